import { VzsbError } from '../common/errors.js';
import type { CompileOptions } from './host-program.js';
import type { Inventory, InventoryHost } from './inventory/types.js';
import type { Play } from './playbook/model.js';
import type { Connection, ConnectionStats } from './connectors/types.js';
import type { Diff } from './types.js';
import { runHost } from './run-host.js';

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
