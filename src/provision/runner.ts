import { VzsbError, errorMessage } from '../common/errors.js';
import { FactStore } from './fact-store.js';
import { factModules } from './facts/index.js';
import { compileHost, type CompileOptions, type HostProgram, type ProgramStep } from './host-program.js';
import type { Inventory, InventoryHost } from './inventory/types.js';
import { operations } from './operations/index.js';
import type { Play } from './playbook/model.js';
import { applyScript, displayCommand, factsScript, newNonce, parseApplyRecords, parseRecords, type ApplyRecord, type ScriptStep } from './script.js';
import { UnreachableError, newStats, type Connection, type ConnectionStats } from './connectors/types.js';
import type { Diff, OsFacts, Plan } from './types.js';
import { evaluateCondition } from './conditions.js';
import { NeedsRun, loopValue, registeredValue } from './registered.js';

export type TaskStatus = 'ok' | 'changed' | 'failed' | 'skipped';

export interface TaskEvent {
  host: string;
  play: string;
  task: string;
  status: TaskStatus;
  reason: string;
  handler: boolean;
  file: string;
  line: number;
  diff?: Diff[];
  /** Commands as shown to people (put bodies summarized, secrets masked). */
  commands?: string[];
  exitCode?: number;
  stdout?: string;
  stderr?: string;
  /** In check mode: what a real run would do. */
  check: boolean;
}

export interface HostSummary {
  host: string;
  ok: number;
  changed: number;
  failed: number;
  skipped: number;
  unreachable: boolean;
  /** Message of the failure or of the unreachable reason. */
  error?: string;
  stats: ConnectionStats;
  durationMs: number;
}

export interface Reporter {
  runStart(info: { hosts: string[]; check: boolean; plays: number }): void;
  hostStart(host: string): void;
  task(event: TaskEvent): void;
  hostEnd(summary: HostSummary): void;
  runEnd(summaries: HostSummary[], info: { durationMs: number; aborted?: string }): void;
}

export interface RunOptions {
  inventory: Inventory;
  plays: Play[];
  /** Already resolved with the inventory's patterns: the hosts this run may touch. */
  selectHosts: (pattern: string) => string[];
  limit?: string[];
  tags?: string[];
  skipTags?: string[];
  check?: boolean;
  diff?: boolean;
  forks?: number;
  extraVars?: Record<string, unknown>;
  connect: (host: InventoryHost) => Promise<Connection>;
  reporter: Reporter;
  compile: Pick<CompileOptions, 'templating' | 'templateDirs'>;
}

export interface RunResult {
  hosts: HostSummary[];
  /** 0 ok; 2 a host failed; 4 a host was unreachable; 6 both. */
  exitCode: number;
}

export const EXIT_FAILED = 2;
export const EXIT_UNREACHABLE = 4;

export async function runPlaybook(options: RunOptions): Promise<RunResult> {
  const started = performance.now();
  const limitSet = options.limit?.length ? new Set(options.limit) : undefined;
  const playHosts = options.plays.map((play) => options.selectHosts(play.hosts).filter((h) => !limitSet || limitSet.has(h)));
  const allHosts = [...new Set(playHosts.flat())];
  options.reporter.runStart({ hosts: allHosts, check: !!options.check, plays: options.plays.length });
  const summaries = new Map<string, HostSummary>();
  const connections = new Map<string, Connection>();
  const forks = Math.max(1, options.forks ?? 10);
  let aborted: string | undefined;

  const compileOpts = (plays: Play[]): CompileOptions => ({
    inventory: options.inventory,
    plays,
    tags: options.tags ?? [],
    skipTags: options.skipTags ?? [],
    extraVars: options.extraVars ?? {},
    diff: !!options.diff,
    ...options.compile,
  });

  const runOne = async (hostName: string, plays: Play[]) => {
    const host = options.inventory.hosts.get(hostName) ?? options.inventory.implicitHosts.get(hostName);
    if (!host) throw new VzsbError('E_RUN', `host ${hostName} is not in the inventory`);
    const prior = summaries.get(hostName);
    if (prior && (prior.failed || prior.unreachable)) return; // a failed host takes no further part, as in Ansible
    options.reporter.hostStart(hostName);
    const summary = await runHost(host, plays, compileOpts(plays), options, connections);
    summaries.set(hostName, prior ? merge(prior, summary) : summary);
    options.reporter.hostEnd(summary);
  };

  try {
    if (options.plays.some((p) => p.serial !== undefined)) {
      // Play by play, in batches: `serial` and `max_fail_percentage` as in Ansible.
      for (let i = 0; i < options.plays.length && !aborted; i++) {
        const play = options.plays[i]!;
        const hosts = playHosts[i]!;
        for (const batch of batches(hosts, play.serial)) {
          await pool(batch, forks, (h) => runOne(h, [play]));
          const failed = batch.filter((h) => summaries.get(h)?.failed || summaries.get(h)?.unreachable).length;
          const limit = play.maxFailPercentage ?? 100;
          if (play.serial !== undefined && (failed / batch.length) * 100 > limit) {
            aborted = `play "${play.name}": ${failed} of ${batch.length} hosts failed in a batch, above max_fail_percentage ${limit}%; remaining batches not run`;
            break;
          }
        }
      }
    } else {
      // Every play of a host in one pipeline: one connection, one facts round trip, one apply round trip.
      await pool(allHosts, forks, (h) => runOne(h, options.plays.filter((_, i) => playHosts[i]!.includes(h))));
    }
  } finally {
    await Promise.all([...connections.values()].map((c) => c.close().catch(() => {})));
  }
  const hosts = allHosts.map((h) => summaries.get(h)).filter((s): s is HostSummary => !!s);
  options.reporter.runEnd(hosts, { durationMs: performance.now() - started, ...(aborted ? { aborted } : {}) });
  let exitCode = 0;
  if (hosts.some((h) => h.failed > 0) || aborted) exitCode |= EXIT_FAILED;
  if (hosts.some((h) => h.unreachable)) exitCode |= EXIT_UNREACHABLE;
  return { hosts, exitCode };
}

/** Whether the plan's commands count as a change when they succeed (changed_when: false does not). */
function changesBy(plan: Plan): boolean {
  return !(plan.changedWhen && 'always' in plan.changedWhen && !plan.changedWhen.always);
}

function merge(a: HostSummary, b: HostSummary): HostSummary {
  return {
    host: a.host,
    ok: a.ok + b.ok,
    changed: a.changed + b.changed,
    failed: a.failed + b.failed,
    skipped: a.skipped + b.skipped,
    unreachable: a.unreachable || b.unreachable,
    ...(b.error ?? a.error ? { error: b.error ?? a.error } : {}),
    stats: b.stats,
    durationMs: a.durationMs + b.durationMs,
  };
}

function batches(hosts: string[], serial: number | string | undefined): string[][] {
  if (serial === undefined) return [hosts];
  const size = typeof serial === 'string' && serial.endsWith('%') ? Math.max(1, Math.floor((hosts.length * Number(serial.slice(0, -1))) / 100)) : Number(serial);
  const out: string[][] = [];
  for (let i = 0; i < hosts.length; i += size) out.push(hosts.slice(i, i + size));
  return out;
}

async function pool<T>(items: T[], width: number, fn: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const workers = Array.from({ length: Math.min(width, items.length) }, async () => {
    while (next < items.length) await fn(items[next++]!);
  });
  await Promise.all(workers);
}

interface Planned {
  step: ProgramStep;
  plan?: Plan;
  /** A deferred `when` was false. */
  skipReason?: string;
  /** Decided on the control machine after running: changed_when / failed_when conditions. */
  decided?: { status: TaskStatus; reason?: string };
}

async function runHost(
  host: InventoryHost,
  plays: Play[],
  compileOptions: CompileOptions,
  options: RunOptions,
  connections: Map<string, Connection>,
): Promise<HostSummary> {
  const started = performance.now();
  const check = !!options.check;
  const summary: HostSummary = { host: host.name, ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: false, stats: newStats(), durationMs: 0 };
  const report = (step: ProgramStep, status: TaskStatus, reason: string, extra: Partial<TaskEvent> = {}) => {
    summary[status]++;
    options.reporter.task({
      host: host.name,
      play: step.play.name,
      task: step.name,
      status,
      reason,
      handler: step.handler,
      file: step.task.file,
      line: step.task.line,
      check,
      ...extra,
    });
  };
  const finish = () => {
    summary.durationMs = performance.now() - started;
    return summary;
  };

  let program: HostProgram;
  try {
    program = await compileHost(host, plays, compileOptions);
  } catch (err) {
    summary.failed++;
    summary.error = errorMessage(err);
    return finish();
  }
  if (program.error) {
    // A bad argument or template is found before anything is sent: the host is not touched.
    summary.failed++;
    summary.error = `${host.name}: ${program.error.message}`;
    return finish();
  }
  const become = program.steps.some((s) => s.become);

  let conn = connections.get(host.name);
  try {
    if (!conn) {
      conn = await options.connect(host);
      connections.set(host.name, conn);
    }
  } catch (err) {
    summary.unreachable = true;
    summary.error = err instanceof UnreachableError ? err.message : `${host.name}: unreachable: ${errorMessage(err)}`;
    return finish();
  }
  summary.stats = conn.stats;

  // Round trip 1: every fact of every task, and the handlers still pending from earlier runs.
  const nonce = newNonce();
  let store: FactStore;
  let pending: Set<string>;
  try {
    const result = await conn.run(factsScript(nonce, program.facts), { become, becomeUser: host.connection.becomeUser });
    const records = parseRecords(result.stdout, nonce);
    if (!records.has('end')) {
      const why = /a password is required|sudo:/.test(result.stderr) ? `become failed: ${result.stderr.trim().split('\n').pop()}` : `gathering facts failed (exit ${result.exitCode}): ${result.stderr.trim().slice(-500)}`;
      throw new VzsbError('E_FACTS', `${host.name}: ${why}`);
    }
    store = new FactStore(factModules.get('os')!.parse(records.get('os') ?? '', '') as OsFacts);
    pending = new Set((records.get('pending') ?? '').split('\n').filter(Boolean));
    program.facts.forEach((ref, i) => store.set(ref, factModules.get(ref.fact)!.parse(records.get(String(i)) ?? '', ref.arg)));
  } catch (err) {
    if (err instanceof UnreachableError) {
      summary.unreachable = true;
      summary.error = err.message;
      return finish();
    }
    summary.failed++;
    summary.error = errorMessage(err);
    return finish();
  }

  // Plan every step against the predicted state. Registered values come from the plans; a
  // condition that needs what only running tells sends the steps planned so far first (a split).
  const planned: Planned[] = [];
  const notified = new Set<string>(pending);
  let planError: { step: ProgramStep | undefined; message: string } | undefined;
  const registered: Record<string, unknown> = {};
  const loopResults = new Map<object, Array<Record<string, unknown>>>();
  const records = new Map<number, ApplyRecord>();
  let scriptFailure: string | undefined;
  let sent = 0;
  let stopped = false;

  const register = (step: ProgramStep, value: Record<string, unknown>) => {
    const name = step.task.register;
    if (!name) return;
    if (step.task.loop === undefined) {
      registered[name] = value;
      return;
    }
    const items = loopResults.get(step.task) ?? [];
    items.push(value);
    loopResults.set(step.task, items);
    registered[name] = loopValue(items);
  };
  const isCommand = (step: ProgramStep) => step.task.module === 'command' || step.task.module === 'shell';
  const predicted = (step: ProgramStep, plan: Plan): Record<string, unknown> => {
    const name = step.task.register ?? '';
    const will = plan.commands.length > 0;
    const reason = { msg: plan.reason };
    if (check) {
      // as Ansible's command in check mode: skipped, rc 0, empty output
      if (plan.checkSkipped) return registeredValue(name, { changed: false, skipped: true, rc: 0, stdout: '', stderr: '', ...reason });
      return registeredValue(name, { changed: will && changesBy(plan), skipped: false, ...reason });
    }
    if (!will) return registeredValue(name, { changed: false, skipped: false, ...(isCommand(step) ? { rc: 0, stdout: '', stderr: '' } : {}), ...reason });
    const pendingFields = [
      ...(isCommand(step) ? ['rc', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines'] : []),
      ...((plan.changedWhen && !('always' in plan.changedWhen)) || step.task.changedWhen !== undefined ? ['changed'] : []),
    ];
    return registeredValue(name, { skipped: false, ...(pendingFields.includes('changed') ? {} : { changed: changesBy(plan) }), ...reason }, pendingFields);
  };
  const conditionVars = (step: ProgramStep) => ({ ...(step.whenVars ?? {}), ...registered });

  /** Send the planned steps not sent yet (one round trip), then fill in their registered values. */
  const flush = async (): Promise<void> => {
    const segment = planned.slice(sent);
    sent = planned.length;
    const steps: ScriptStep[] = [];
    for (const p of segment) {
      if (!p.plan || !p.plan.commands.length) continue;
      steps.push({
        id: p.step.index,
        commands: p.plan.commands,
        changedWhen: p.plan.changedWhen,
        notify: p.step.notify,
        // failed_when decides on this machine; the step ends its segment
        ignoreErrors: p.step.task.ignoreErrors || p.step.task.failedWhen !== undefined,
        ...(p.step.handler ? { guard: p.step.handlerId! } : {}),
      });
    }
    if (!steps.length) return;
    const applyNonce = newNonce();
    try {
      const result = await conn!.run(applyScript(applyNonce, steps), { become, becomeUser: host.connection.becomeUser });
      const parsed = parseApplyRecords(result.stdout, applyNonce);
      for (const r of parsed.records) records.set(r.id, r);
      const last = parsed.records[parsed.records.length - 1];
      if (!parsed.complete && !(last && last.exitCode !== 0)) {
        scriptFailure = `the apply script stopped (exit ${result.exitCode}${result.signal ? `, signal ${result.signal}` : ''}): ${result.stderr.trim().slice(-500)}`;
      }
    } catch (err) {
      if (err instanceof UnreachableError) {
        summary.unreachable = true;
        summary.error = err.message;
      } else scriptFailure = errorMessage(err);
    }
    for (const p of segment) {
      if (!p.plan || !p.plan.commands.length) continue;
      const rec = records.get(p.step.index);
      if (!rec) {
        stopped = true;
        continue;
      }
      const value = registeredValue(p.step.task.register ?? '', { changed: rec.changed, rc: rec.exitCode, stdout: rec.stdout.replace(/[\r\n]+$/, ''), stderr: rec.stderr.replace(/[\r\n]+$/, ''), failed: rec.exitCode !== 0, skipped: false });
      let failed = rec.exitCode !== 0;
      let changed = rec.changed;
      try {
        const vars = { ...conditionVars(p.step), ...(p.step.task.register ? { [p.step.task.register]: value } : {}) };
        if (p.step.task.changedWhen !== undefined) changed = evaluateCondition(p.step.task.changedWhen, vars);
        if (p.step.task.failedWhen !== undefined) failed = evaluateCondition(p.step.task.failedWhen, vars);
      } catch (err) {
        p.decided = { status: 'failed', reason: errorMessage(err) };
        stopped = true;
        continue;
      }
      value.changed = changed;
      value.failed = failed;
      if (p.step.task.register) register(p.step, value);
      if (p.step.task.changedWhen !== undefined || p.step.task.failedWhen !== undefined) {
        if (failed && !p.step.task.ignoreErrors) {
          p.decided = { status: 'failed', reason: p.step.task.failedWhen !== undefined ? `failed_when: ${String(p.step.task.failedWhen)}` : `exit code ${rec.exitCode}` };
          stopped = true;
        } else p.decided = { status: failed ? 'ok' : changed ? 'changed' : 'ok', reason: failed ? `failed (ignored)` : p.plan.reason };
      } else if (failed && !p.step.task.ignoreErrors) stopped = true;
    }
  };

  for (const step of program.steps) {
    if (stopped) break;
    if (step.skipped) {
      planned.push({ step });
      register(step, registeredValue(step.task.register ?? '', { changed: false, skipped: true, msg: step.skipped }));
      continue;
    }
    if (step.handler && !notified.has(step.handlerId!)) continue;
    if (step.deferredWhen) {
      let verdict: string | boolean | undefined;
      for (let attempt = 0; attempt < 2 && verdict === undefined; attempt++) {
        try {
          const no = step.deferredWhen.find((w) => !evaluateCondition(w, conditionVars(step)));
          verdict = no === undefined ? true : `when: ${String(no)}`;
        } catch (err) {
          if (!(err instanceof NeedsRun)) {
            planError = { step, message: errorMessage(err) };
            break;
          }
          if (check || attempt > 0) verdict = `when: ${err.message}${check ? ' (check mode runs nothing)' : ''}`;
          else {
            await flush();
            if (stopped) break;
          }
        }
      }
      if (planError || stopped) break;
      if (verdict !== true) {
        planned.push({ step, skipReason: String(verdict) });
        register(step, registeredValue(step.task.register ?? '', { changed: false, skipped: true, msg: String(verdict) }));
        continue;
      }
    }
    try {
      const op = operations.get(step.task.module)!;
      const plan = op.plan(step.args, { facts: store, vars: {}, check, wantDiff: !!options.diff });
      for (const [ref, value] of plan.effects ?? []) store.set(ref, value);
      if (plan.commands.length && changesBy(plan)) {
        for (const n of step.notify) notified.add(n);
      }
      planned.push({ step, plan });
      register(step, predicted(step, plan));
      if (!check && step.task.failedWhen !== undefined && plan.commands.length) await flush();
    } catch (err) {
      planError = { step, message: errorMessage(err) };
      break;
    }
  }

  const eventFor = (p: Planned): Partial<TaskEvent> => ({
    ...(p.plan?.diff ? { diff: p.plan.diff } : {}),
    ...(p.plan?.commands.length ? { commands: p.plan.commands.map(displayCommand) } : {}),
  });

  if (check) {
    for (const p of planned) {
      if (p.step.skipped) report(p.step, 'skipped', p.step.skipped);
      else if (p.skipReason) report(p.step, 'skipped', p.skipReason);
      else if (p.plan!.checkSkipped) report(p.step, 'skipped', p.plan!.checkSkipped, eventFor(p));
      else if (p.plan!.commands.length && changesBy(p.plan!) && p.step.task.changedWhen !== false) report(p.step, 'changed', p.plan!.reason, eventFor(p));
      else report(p.step, 'ok', p.plan!.reason, eventFor(p));
    }
    if (planError) failPlan(planError);
    return finish();
  }

  // The last (usually the only) apply round trip: the whole plan as one script.
  if (!stopped) await flush();

  let reportedStop = false;
  for (const p of planned) {
    if (reportedStop) break;
    if (p.step.skipped) {
      report(p.step, 'skipped', p.step.skipped);
      continue;
    }
    if (p.skipReason) {
      report(p.step, 'skipped', p.skipReason);
      continue;
    }
    if (!p.plan!.commands.length) {
      report(p.step, p.step.task.changedWhen === true ? 'changed' : 'ok', p.plan!.reason, eventFor(p));
      continue;
    }
    const rec = records.get(p.step.index);
    if (!rec) {
      if (p.step.handler) continue; // its marker was gone: nothing to run
      if (scriptFailure || summary.unreachable) {
        report(p.step, 'failed', scriptFailure ?? summary.error ?? 'not run', { ...eventFor(p) });
        summary.error ??= `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}): ${scriptFailure}`;
      }
      reportedStop = true;
      continue;
    }
    const ev = { ...eventFor(p), exitCode: rec.exitCode, ...(rec.stdout ? { stdout: rec.stdout } : {}), ...(rec.stderr && rec.exitCode !== 0 ? { stderr: rec.stderr } : {}) };
    if (p.decided) {
      report(p.step, p.decided.status, p.decided.reason ?? p.plan!.reason, ev);
      if (p.decided.status === 'failed') {
        summary.error = `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}) failed: ${p.decided.reason}`;
        reportedStop = true;
      }
      continue;
    }
    if (rec.exitCode !== 0) {
      if (p.step.task.ignoreErrors) {
        report(p.step, 'ok', `failed with exit code ${rec.exitCode} (ignored)`, ev);
        continue;
      }
      report(p.step, 'failed', `exit code ${rec.exitCode}`, ev);
      summary.error = `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}) failed with exit code ${rec.exitCode}`;
      reportedStop = true;
      continue;
    }
    report(p.step, rec.changed ? 'changed' : 'ok', p.plan!.reason, { ...eventFor(p), ...(rec.stdout ? { stdout: rec.stdout } : {}) });
  }
  if (planError && !reportedStop) failPlan(planError);
  return finish();

  function failPlan(e: { step: ProgramStep | undefined; message: string }) {
    if (e.step) report(e.step, 'failed', e.message);
    else summary.failed++;
    summary.error = e.step ? `${host.name}: task "${e.step.name}" (${e.step.task.file}:${e.step.task.line}): ${e.message}` : `${host.name}: ${e.message}`;
  }
}
