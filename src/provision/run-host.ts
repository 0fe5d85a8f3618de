import { VzsbError, errorMessage } from '../common/errors.js';
import { FactStore } from './fact-store.js';
import { factModules } from './facts/index.js';
import { compileHost, type CompileOptions, type HostProgram, type ProgramStep } from './host-program.js';
import type { InventoryHost } from './inventory/types.js';
import { operations } from './operations/index.js';
import type { Play } from './playbook/model.js';
import { applyScript, displayCommand, factsScript, newNonce, parseApplyRecords, parseRecords, type ApplyRecord, type ScriptStep } from './script.js';
import { UnreachableError, newStats, type Connection } from './connectors/types.js';
import type { OsFacts, Plan } from './types.js';
import { evaluateCondition } from './conditions.js';
import { NeedsRun, loopValue, registeredValue } from './registered.js';
import type { HostSummary, RunOptions, TaskEvent, TaskStatus } from './runner.js';

/**
 * One host's part of a run, in four stages, each a function below:
 *   facts    round trip 1: every fact of every task, and the handlers still pending from earlier runs;
 *   plan     every step planned against the predicted state (operations plan, never run);
 *   apply    the planned steps sent as one script (round trip 2), or in segments where a
 *            condition needs what only running tells (a split) or failed_when decides;
 *   outcome  each task's status reported, in order, and the host's summary.
 * Before them the host's program is compiled and its connection opened. A stage that fails
 * ends the host's run; its summary says why.
 */
export async function runHost(
  host: InventoryHost,
  plays: Play[],
  compileOptions: CompileOptions,
  options: RunOptions,
  connections: Map<string, Connection>,
): Promise<HostSummary> {
  const run = new HostRun(host, options);
  const target = await compileAndConnect(run, plays, compileOptions, connections);
  if (!target) return run.finish();
  const facts = await gatherFacts(run, target);
  if (!facts) return run.finish();
  const progress = new Progress();
  const planError = await planSteps(run, target, facts, progress);
  if (run.check) {
    reportCheck(run, progress, planError);
    return run.finish();
  }
  // The last (usually the only) apply round trip: the whole plan as one script.
  if (!progress.stopped) await applySteps(run, target, progress);
  reportOutcome(run, progress, planError);
  return run.finish();
}

/** The host's summary and its task events, which every stage adds to. */
class HostRun {
  readonly check: boolean;
  readonly summary: HostSummary;
  private readonly started = performance.now();

  constructor(
    readonly host: InventoryHost,
    readonly options: RunOptions,
  ) {
    this.check = !!options.check;
    this.summary = { host: host.name, ok: 0, changed: 0, failed: 0, skipped: 0, unreachable: false, stats: newStats(), durationMs: 0 };
  }

  report(step: ProgramStep, status: TaskStatus, reason: string, extra: Partial<TaskEvent> = {}): void {
    this.summary[status]++;
    this.options.reporter.task({
      host: this.host.name,
      play: step.play.name,
      task: step.name,
      status,
      reason,
      handler: step.handler,
      file: step.task.file,
      line: step.task.line,
      check: this.check,
      ...extra,
    });
  }

  /** The host failed before any task was reported. */
  failed(error: string): void {
    this.summary.failed++;
    this.summary.error = error;
  }

  unreachable(error: string): void {
    this.summary.unreachable = true;
    this.summary.error = error;
  }

  finish(): HostSummary {
    this.summary.durationMs = performance.now() - this.started;
    return this.summary;
  }
}

/** The compiled program and the open connection the stages work with. */
interface Target {
  program: HostProgram;
  conn: Connection;
  /** Whether any step runs as another user (then each round trip does). */
  become: boolean;
}

interface Facts {
  store: FactStore;
  /** Handlers notified by an earlier run that did not get to run them. */
  pending: Set<string>;
}

interface Planned {
  step: ProgramStep;
  plan?: Plan;
  /** A deferred `when` was false. */
  skipReason?: string;
  /** Decided on the control machine after running: changed_when / failed_when conditions. */
  decided?: { status: TaskStatus; reason?: string };
}

interface PlanError {
  step: ProgramStep | undefined;
  message: string;
}

/** What planning and applying share: the steps planned, how many were sent, what ran, the registered values. */
class Progress {
  readonly planned: Planned[] = [];
  readonly records = new Map<number, ApplyRecord>();
  readonly registered: Record<string, unknown> = {};
  private readonly loopResults = new Map<object, Array<Record<string, unknown>>>();
  scriptFailure: string | undefined;
  sent = 0;
  /** A step failed (or did not run): nothing after it is planned, sent or reported. */
  stopped = false;

  register(step: ProgramStep, value: Record<string, unknown>): void {
    const name = step.task.register;
    if (!name) return;
    if (step.task.loop === undefined) {
      this.registered[name] = value;
      return;
    }
    const items = this.loopResults.get(step.task) ?? [];
    items.push(value);
    this.loopResults.set(step.task, items);
    this.registered[name] = loopValue(items);
  }

  conditionVars(step: ProgramStep): Record<string, unknown> {
    return { ...(step.whenVars ?? {}), ...this.registered };
  }
}

async function compileAndConnect(run: HostRun, plays: Play[], compileOptions: CompileOptions, connections: Map<string, Connection>): Promise<Target | undefined> {
  const { host } = run;
  let program: HostProgram;
  try {
    program = await compileHost(host, plays, compileOptions);
  } catch (err) {
    run.failed(errorMessage(err));
    return undefined;
  }
  if (program.error) {
    // A bad argument or template is found before anything is sent: the host is not touched.
    run.failed(`${host.name}: ${program.error.message}`);
    return undefined;
  }
  const become = program.steps.some((s) => s.become);

  let conn = connections.get(host.name);
  try {
    if (!conn) {
      conn = await run.options.connect(host);
      connections.set(host.name, conn);
    }
  } catch (err) {
    run.unreachable(err instanceof UnreachableError ? err.message : `${host.name}: unreachable: ${errorMessage(err)}`);
    return undefined;
  }
  run.summary.stats = conn.stats;
  return { program, conn, become };
}

/** Stage 1, facts: one round trip for every fact of every task and the pending handlers. */
async function gatherFacts(run: HostRun, { program, conn, become }: Target): Promise<Facts | undefined> {
  const { host } = run;
  const nonce = newNonce();
  try {
    const result = await conn.run(factsScript(nonce, program.facts), { become, becomeUser: host.connection.becomeUser });
    const records = parseRecords(result.stdout, nonce);
    if (!records.has('end')) {
      const why = /a password is required|sudo:/.test(result.stderr) ? `become failed: ${result.stderr.trim().split('\n').pop()}` : `gathering facts failed (exit ${result.exitCode}): ${result.stderr.trim().slice(-500)}`;
      throw new VzsbError('E_FACTS', `${host.name}: ${why}`);
    }
    const store = new FactStore(factModules.get('os')!.parse(records.get('os') ?? '', '') as OsFacts);
    const pending = new Set((records.get('pending') ?? '').split('\n').filter(Boolean));
    program.facts.forEach((ref, i) => store.set(ref, factModules.get(ref.fact)!.parse(records.get(String(i)) ?? '', ref.arg)));
    return { store, pending };
  } catch (err) {
    if (err instanceof UnreachableError) run.unreachable(err.message);
    else run.failed(errorMessage(err));
    return undefined;
  }
}

/**
 * Stage 2, plan: every step against the predicted state. Registered values come from the plans;
 * a condition that needs what only running tells sends the steps planned so far first (a split).
 */
async function planSteps(run: HostRun, target: Target, { store, pending }: Facts, progress: Progress): Promise<PlanError | undefined> {
  const { check, options } = run;
  const notified = new Set<string>(pending);
  let planError: PlanError | undefined;
  for (const step of target.program.steps) {
    if (progress.stopped) break;
    if (step.skipped) {
      progress.planned.push({ step });
      progress.register(step, registeredValue(step.task.register ?? '', { changed: false, skipped: true, msg: step.skipped }));
      continue;
    }
    if (step.handler && !notified.has(step.handlerId!)) continue;
    if (step.deferredWhen) {
      let verdict: string | boolean | undefined;
      for (let attempt = 0; attempt < 2 && verdict === undefined; attempt++) {
        try {
          const no = step.deferredWhen.find((w) => !evaluateCondition(w, progress.conditionVars(step)));
          verdict = no === undefined ? true : `when: ${String(no)}`;
        } catch (err) {
          if (!(err instanceof NeedsRun)) {
            planError = { step, message: errorMessage(err) };
            break;
          }
          if (check || attempt > 0) verdict = `when: ${err.message}${check ? ' (check mode runs nothing)' : ''}`;
          else {
            await applySteps(run, target, progress);
            if (progress.stopped) break;
          }
        }
      }
      if (planError || progress.stopped) break;
      if (verdict !== true) {
        progress.planned.push({ step, skipReason: String(verdict) });
        progress.register(step, registeredValue(step.task.register ?? '', { changed: false, skipped: true, msg: String(verdict) }));
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
      progress.planned.push({ step, plan });
      progress.register(step, predicted(step, plan, check));
      if (!check && step.task.failedWhen !== undefined && plan.commands.length) await applySteps(run, target, progress);
    } catch (err) {
      planError = { step, message: errorMessage(err) };
      break;
    }
  }
  return planError;
}

/** A step's registered value as planned: what running will fill in is marked pending. */
function predicted(step: ProgramStep, plan: Plan, check: boolean): Record<string, unknown> {
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
}

function isCommand(step: ProgramStep): boolean {
  return step.task.module === 'command' || step.task.module === 'shell';
}

/** Whether the plan's commands count as a change when they succeed (changed_when: false does not). */
function changesBy(plan: Plan): boolean {
  return !(plan.changedWhen && 'always' in plan.changedWhen && !plan.changedWhen.always);
}

/** Stage 3, apply: send the planned steps not sent yet (one round trip), then fill in their registered values. */
async function applySteps(run: HostRun, { conn, become }: Target, progress: Progress): Promise<void> {
  const segment = progress.planned.slice(progress.sent);
  progress.sent = progress.planned.length;
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
    const result = await conn.run(applyScript(applyNonce, steps), { become, becomeUser: run.host.connection.becomeUser });
    const parsed = parseApplyRecords(result.stdout, applyNonce);
    for (const r of parsed.records) progress.records.set(r.id, r);
    const last = parsed.records[parsed.records.length - 1];
    if (!parsed.complete && !(last && last.exitCode !== 0)) {
      progress.scriptFailure = `the apply script stopped (exit ${result.exitCode}${result.signal ? `, signal ${result.signal}` : ''}): ${result.stderr.trim().slice(-500)}`;
    }
  } catch (err) {
    if (err instanceof UnreachableError) run.unreachable(err.message);
    else progress.scriptFailure = errorMessage(err);
  }
  for (const p of segment) {
    if (!p.plan || !p.plan.commands.length) continue;
    const rec = progress.records.get(p.step.index);
    if (!rec) {
      progress.stopped = true;
      continue;
    }
    const value = registeredValue(p.step.task.register ?? '', { changed: rec.changed, rc: rec.exitCode, stdout: rec.stdout.replace(/[\r\n]+$/, ''), stderr: rec.stderr.replace(/[\r\n]+$/, ''), failed: rec.exitCode !== 0, skipped: false });
    let failed = rec.exitCode !== 0;
    let changed = rec.changed;
    try {
      const vars = { ...progress.conditionVars(p.step), ...(p.step.task.register ? { [p.step.task.register]: value } : {}) };
      if (p.step.task.changedWhen !== undefined) changed = evaluateCondition(p.step.task.changedWhen, vars);
      if (p.step.task.failedWhen !== undefined) failed = evaluateCondition(p.step.task.failedWhen, vars);
    } catch (err) {
      p.decided = { status: 'failed', reason: errorMessage(err) };
      progress.stopped = true;
      continue;
    }
    value.changed = changed;
    value.failed = failed;
    if (p.step.task.register) progress.register(p.step, value);
    if (p.step.task.changedWhen !== undefined || p.step.task.failedWhen !== undefined) {
      if (failed && !p.step.task.ignoreErrors) {
        p.decided = { status: 'failed', reason: p.step.task.failedWhen !== undefined ? `failed_when: ${String(p.step.task.failedWhen)}` : `exit code ${rec.exitCode}` };
        progress.stopped = true;
      } else p.decided = { status: failed ? 'ok' : changed ? 'changed' : 'ok', reason: failed ? `failed (ignored)` : p.plan.reason };
    } else if (failed && !p.step.task.ignoreErrors) progress.stopped = true;
  }
}

/** Stage 4 in check mode: what a real run would do, from the plans alone. */
function reportCheck(run: HostRun, { planned }: Progress, planError: PlanError | undefined): void {
  for (const p of planned) {
    if (p.step.skipped) run.report(p.step, 'skipped', p.step.skipped);
    else if (p.skipReason) run.report(p.step, 'skipped', p.skipReason);
    else if (p.plan!.checkSkipped) run.report(p.step, 'skipped', p.plan!.checkSkipped, eventFor(p));
    else if (p.plan!.commands.length && changesBy(p.plan!) && p.step.task.changedWhen !== false) run.report(p.step, 'changed', p.plan!.reason, eventFor(p));
    else run.report(p.step, 'ok', p.plan!.reason, eventFor(p));
  }
  if (planError) failPlan(run, planError);
}

/** Stage 4, outcome: each planned step's status from what ran, up to the first failure. */
function reportOutcome(run: HostRun, { planned, records, scriptFailure }: Progress, planError: PlanError | undefined): void {
  const { host, summary } = run;
  let reportedStop = false;
  for (const p of planned) {
    if (reportedStop) break;
    if (p.step.skipped) {
      run.report(p.step, 'skipped', p.step.skipped);
      continue;
    }
    if (p.skipReason) {
      run.report(p.step, 'skipped', p.skipReason);
      continue;
    }
    if (!p.plan!.commands.length) {
      run.report(p.step, p.step.task.changedWhen === true ? 'changed' : 'ok', p.plan!.reason, eventFor(p));
      continue;
    }
    const rec = records.get(p.step.index);
    if (!rec) {
      if (p.step.handler) continue; // its marker was gone: nothing to run
      if (scriptFailure || summary.unreachable) {
        run.report(p.step, 'failed', scriptFailure ?? summary.error ?? 'not run', { ...eventFor(p) });
        summary.error ??= `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}): ${scriptFailure}`;
      }
      reportedStop = true;
      continue;
    }
    const ev = { ...eventFor(p), exitCode: rec.exitCode, ...(rec.stdout ? { stdout: rec.stdout } : {}), ...(rec.stderr && rec.exitCode !== 0 ? { stderr: rec.stderr } : {}) };
    if (p.decided) {
      run.report(p.step, p.decided.status, p.decided.reason ?? p.plan!.reason, ev);
      if (p.decided.status === 'failed') {
        summary.error = `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}) failed: ${p.decided.reason}`;
        reportedStop = true;
      }
      continue;
    }
    if (rec.exitCode !== 0) {
      if (p.step.task.ignoreErrors) {
        run.report(p.step, 'ok', `failed with exit code ${rec.exitCode} (ignored)`, ev);
        continue;
      }
      run.report(p.step, 'failed', `exit code ${rec.exitCode}`, ev);
      summary.error = `${host.name}: task "${p.step.name}" (${p.step.task.file}:${p.step.task.line}) failed with exit code ${rec.exitCode}`;
      reportedStop = true;
      continue;
    }
    run.report(p.step, rec.changed ? 'changed' : 'ok', p.plan!.reason, { ...eventFor(p), ...(rec.stdout ? { stdout: rec.stdout } : {}) });
  }
  if (planError && !reportedStop) failPlan(run, planError);
}

function eventFor(p: Planned): Partial<TaskEvent> {
  return {
    ...(p.plan?.diff ? { diff: p.plan.diff } : {}),
    ...(p.plan?.commands.length ? { commands: p.plan.commands.map(displayCommand) } : {}),
  };
}

function failPlan(run: HostRun, e: PlanError): void {
  const { host, summary } = run;
  if (e.step) run.report(e.step, 'failed', e.message);
  else summary.failed++;
  summary.error = e.step ? `${host.name}: task "${e.step.name}" (${e.step.task.file}:${e.step.task.line}): ${e.message}` : `${host.name}: ${e.message}`;
}
