import { connect } from 'node:net';
import type * as v1 from '../../api/v1/hypervisor.js';
import type { ContainerDriver, DriverHealth } from '../drivers/types.js';
import type { Pool } from './pool.js';

/**
 * What /healthz reports beyond "the daemon answers": whether this hypervisor can take new
 * containers now. `degraded` (with one reason per failed check) tells the balancer to place
 * no new lease here; existing leases go on. Checks: the state directory takes a write, the
 * driver's host checks (LXC: the container bridge is up; free space where clones go), free
 * space at least `minFreeBytes`, and optionally a clean container's sshd answering over the
 * container network (two failed probes in a row, never a student's container). Results are cached for `cacheMs` so a busy poller costs nothing.
 */
export interface HealthConfig {
  /** Below this many free bytes where containers are made, no new ones. */
  minFreeBytes: number;
  /** Connect to one running container's sshd (port `sshPort`) as part of the check. */
  sshProbe: boolean;
  sshPort: number;
  /** How long one answer is reused. */
  cacheMs: number;
  /** A state write is tried when none succeeded for this long. */
  probeEveryMs: number;
}

/** What the checks found: the part of GET /healthz (src/api/v1/hypervisor.ts) this class makes. */
export type HealthReport = Pick<v1.HypervisorHealth, 'status' | 'degraded' | 'checks'>;

export interface HealthDeps {
  driver: ContainerDriver;
  pool: Pool;
  config: HealthConfig;
  now?: () => number;
}

const SSH_PROBE_TIMEOUT_MS = 1000;
/** Failed sshd probes in a row (on different clean containers where there are several) that make it degraded. */
export const SSH_PROBE_FAILURES = 2;

export class HypervisorHealth {
  private cached: { at: number; report: HealthReport } | undefined;
  private running: Promise<HealthReport> | undefined;
  private lastProbe = -Infinity;
  /** The sshd probe: the last container probed (the next check takes the next one) and failures in a row. */
  private probed: string | undefined;
  private probeFailures = 0;
  private readonly now: () => number;

  constructor(private readonly deps: HealthDeps) {
    this.now = deps.now ?? Date.now;
  }

  /** The current report (cached for `cacheMs`; concurrent callers share one check). */
  report(): Promise<HealthReport> {
    const c = this.cached;
    if (c && this.now() - c.at < this.deps.config.cacheMs) return Promise.resolve(c.report);
    this.running ??= this.check().finally(() => (this.running = undefined));
    return this.running;
  }

  /**
   * Why no new lease should be granted, from the last report (null: none known, or healthy).
   * Never waits: a stale report starts a new check in the background for the next caller.
   */
  lastDegraded(): string[] | null {
    const c = this.cached;
    if (!c || this.now() - c.at >= this.deps.config.cacheMs) void this.report().catch(() => undefined);
    return c && c.report.degraded.length > 0 ? c.report.degraded : null;
  }

  private async check(): Promise<HealthReport> {
    const { pool, driver, config } = this.deps;
    const degraded: string[] = [];
    // A write now and then, so a read-only directory is seen even when nothing changes.
    if (!pool.storeHealth().writable || this.now() - this.lastProbe >= config.probeEveryMs) {
      this.lastProbe = this.now();
      await pool.probeStore();
    }
    const sh = pool.storeHealth();
    if (!sh.writable) degraded.push(`state not writable: ${sh.error}`);
    const report: HealthReport = {
      status: 'ok',
      degraded,
      checks: {
        state: { writable: sh.writable, error: sh.error, since: sh.failingSince === undefined ? undefined : new Date(sh.failingSince).toISOString(), pending: sh.pending },
      },
    };
    if (driver.health) {
      const dh: DriverHealth = await driver.health().catch((err: unknown) => ({ problems: [`driver health check failed: ${(err as Error).message}`] }));
      degraded.push(...dh.problems);
      report.checks.network = { ok: dh.problems.length === 0, problems: dh.problems };
      if (dh.freeBytes !== undefined) {
        const ok = dh.freeBytes >= config.minFreeBytes;
        report.checks.disk = { freeBytes: dh.freeBytes, minFreeBytes: config.minFreeBytes, ok };
        if (!ok) degraded.push(`only ${Math.floor(dh.freeBytes / 1048576)} MiB free for containers (at least ${Math.floor(config.minFreeBytes / 1048576)} MiB wanted)`);
      }
      if (config.sshProbe && dh.reachable === true && dh.problems.length === 0) {
        // Clean containers only: a leased one's sshd is its student's (root can stop it), and a
        // hypervisor that one student can make refuse everyone would be a way to hurt the others.
        // One by one in turn, and degraded only after SSH_PROBE_FAILURES failures in a row, so one
        // container's hiccup (an sshd starting, a reset under way) does not stop new leases.
        const clean = pool.containers().filter((c) => c.state === 'clean' && c.address);
        const target = clean.find((c) => this.probed === undefined || c.id > this.probed) ?? clean[0];
        if (target?.address) {
          this.probed = target.id;
          const probe = await sshAnswers(target.address, config.sshPort, SSH_PROBE_TIMEOUT_MS);
          report.checks.network.sshProbe = { container: target.id, ...probe };
          this.probeFailures = probe.ok ? 0 : this.probeFailures + 1;
          if (this.probeFailures >= SSH_PROBE_FAILURES) {
            report.checks.network.ok = false;
            degraded.push(`container ${target.id}'s sshd at ${target.address}:${config.sshPort} does not answer: ${probe.error} (${this.probeFailures} probes in a row failed)`);
          }
        }
      }
    }
    report.status = degraded.length > 0 ? 'degraded' : 'ok';
    this.cached = { at: this.now(), report };
    return report;
  }
}

/** TCP connect and the first bytes of the SSH banner, within `timeoutMs`. */
export function sshAnswers(host: string, port: number, timeoutMs: number): Promise<{ ok: boolean; ms?: number; error?: string }> {
  const started = performance.now();
  return new Promise((resolve) => {
    const sock = connect({ host, port });
    const done = (r: { ok: boolean; ms?: number; error?: string }) => {
      clearTimeout(timer);
      sock.destroy();
      resolve(r);
    };
    const timer = setTimeout(() => done({ ok: false, error: `no answer within ${timeoutMs} ms` }), timeoutMs);
    sock.once('data', (chunk: Buffer) => {
      const ok = chunk.toString('latin1').startsWith('SSH-');
      done(ok ? { ok, ms: Math.round(performance.now() - started) } : { ok, error: 'not an SSH banner' });
    });
    sock.once('error', (err) => done({ ok: false, error: err.message }));
    sock.once('end', () => done({ ok: false, error: 'closed without a banner' }));
  });
}
