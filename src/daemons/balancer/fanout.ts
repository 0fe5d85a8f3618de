import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Clock } from '../common/clock.js';
import type { HealthMonitor } from './health.js';
import type { CallError, FanoutReport, HypervisorResult, PoolsReport, PoolView, ResultStatus, SessionsReport } from '../../api/v1/balancer.js';
import { capacityStates, type Capacity, type ResetRequest as ResetOptions } from '../../api/v1/hypervisor.js';
import { HypervisorCallError, type HypervisorClient } from './hypervisor-client.js';

/**
 * The instructor's view and actions over all hypervisors: every call goes to every hypervisor
 * in parallel with a bounded time, and every hypervisor gets its own result. A hypervisor
 * that fails is reported as failed next to the others; nothing is dropped.
 */
export interface FanoutDeps {
  clients: readonly HypervisorClient[];
  health: HealthMonitor;
  clock: Clock;
  logger: Logger;
  timeoutMs: number;
}

export class Fanout {
  constructor(private readonly deps: FanoutDeps) {}

  async pools(): Promise<PoolsReport> {
    const views = await this.each(async (client): Promise<PoolView> => {
      try {
        const { capacity, containers } = await client.containers(this.deps.timeoutMs);
        this.deps.health.reportSuccess(client.name, capacity);
        return { ...this.base(client), up: true, lastSeen: new Date(this.deps.clock.now()).toISOString(), capacity, containers };
      } catch (err) {
        this.noteFailure(client.name, err);
        return { ...this.base(client), up: false, error: errorOf(err), capacity: null, containers: [] };
      }
    });
    const totals: Capacity = { clean: 0, leased: 0, building: 0, dirty: 0, broken: 0, max: 0, standby: 0 };
    for (const v of views) {
      if (!v.capacity) continue;
      for (const k of [...capacityStates, 'max', 'standby'] as const) totals[k] += v.capacity[k];
    }
    const up = views.filter((v) => v.up).length;
    return { time: this.now(), hypervisors: views, totals, up, down: views.length - up };
  }

  async sessions(): Promise<SessionsReport> {
    const report: SessionsReport = { time: this.now(), sessions: [], unavailable: [] };
    await this.each(async (client) => {
      try {
        const leases = await client.leases(this.deps.timeoutMs);
        this.deps.health.reportSuccess(client.name);
        for (const l of leases) report.sessions.push({ ...l, hypervisor: client.name });
      } catch (err) {
        this.noteFailure(client.name, err);
        report.unavailable.push({ hypervisor: client.name, error: errorOf(err) });
      }
    });
    report.sessions.sort((a, b) => (a.user < b.user ? -1 : a.user > b.user ? 1 : a.hypervisor < b.hypervisor ? -1 : 1));
    report.unavailable.sort((a, b) => (a.hypervisor < b.hypervisor ? -1 : 1));
    return report;
  }

  /** Reset every pool, or only `only`'s. */
  async resetPools(options: ResetOptions, only?: string): Promise<FanoutReport> {
    const clients = only === undefined ? this.deps.clients : this.deps.clients.filter((c) => c.name === only);
    const results = await this.each(async (client): Promise<HypervisorResult> => {
      try {
        return { hypervisor: client.name, status: 'done', report: await client.resetAll(options, this.deps.timeoutMs) };
      } catch (err) {
        this.noteFailure(client.name, err);
        return { hypervisor: client.name, status: 'failed', error: errorOf(err) };
      }
    }, clients);
    const report: FanoutReport = { ok: results.every((r) => r.status === 'done'), results };
    this.logReset(only === undefined ? 'all' : `hypervisor:${only}`, options, report);
    return report;
  }

  /** Reset the container of `user` wherever it is. Done once its holder reset it. */
  async resetUser(user: string, options: ResetOptions): Promise<FanoutReport> {
    const results = await this.each(async (client): Promise<HypervisorResult> => {
      try {
        return { hypervisor: client.name, status: 'done', report: await client.resetUser(user, options, this.deps.timeoutMs) };
      } catch (err) {
        if (err instanceof HypervisorCallError && err.code === 'E_NO_LEASE') return { hypervisor: client.name, status: 'no-lease' };
        this.noteFailure(client.name, err);
        return { hypervisor: client.name, status: 'failed', error: errorOf(err) };
      }
    });
    const found = results.some((r) => r.status === 'done');
    const failed = results.filter((r) => r.status === 'failed');
    const report: FanoutReport = { ok: found, results };
    if (!found && failed.length === 0) report.error = { code: 'E_NO_LEASE', message: `user ${user} holds no lease on any hypervisor` };
    else if (!found && failed.some((f) => f.error?.code === 'E_IN_USE')) report.error = { code: 'E_IN_USE', message: `${failed.find((f) => f.error?.code === 'E_IN_USE')!.error!.message}` };
    else if (!found) report.error = { code: 'E_PARTIAL', message: `no hypervisor reset a container of ${user}; ${failed.map((f) => f.error!.message).join('; ')}` };
    this.logReset(`user:${user}`, options, report);
    return report;
  }

  private async each<T>(fn: (client: HypervisorClient) => Promise<T>, clients: readonly HypervisorClient[] = this.deps.clients): Promise<T[]> {
    return Promise.all(clients.map(fn));
  }

  private base(client: HypervisorClient): Pick<PoolView, 'name' | 'url' | 'lastSeen' | 'error'> {
    const seen = this.deps.health.get(client.name)?.lastSeen;
    return { name: client.name, url: client.url, lastSeen: seen ? new Date(seen).toISOString() : null, error: null };
  }

  private noteFailure(name: string, err: unknown): void {
    if (err instanceof HypervisorCallError && (err.failure === 'unreachable' || err.failure === 'timeout')) this.deps.health.reportFailure(name, err.message);
  }

  private logReset(target: string, options: ResetOptions, report: FanoutReport): void {
    const by = (s: ResultStatus) => report.results.filter((r) => r.status === s).map((r) => r.hypervisor);
    const fields = { target, force: options.force, done: by('done'), failed: by('failed'), reset: report.results.reduce((n, r) => n + (r.report?.reset.length ?? 0), 0) };
    if (report.ok) this.deps.logger.info('reset.fanout', fields);
    else this.deps.logger.warn('reset.fanout', fields);
  }

  private now(): string {
    return new Date(this.deps.clock.now()).toISOString();
  }
}

function errorOf(err: unknown): CallError {
  if (err instanceof HypervisorCallError) return { code: err.code, message: err.message };
  return { code: 'E_INTERNAL', message: errorMessage(err) };
}
