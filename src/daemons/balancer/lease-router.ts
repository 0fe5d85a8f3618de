import { VzsbError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { KeyedMutex } from '../common/keyed-mutex.js';
import type { BalancerConfig } from './config.js';
import type { HealthMonitor } from './health.js';
import { HypervisorCallError, type Capacity, type HypervisorClient, type LeaseResponse, type ReleaseResponse } from './hypervisor-client.js';
import type { BalancerMetrics } from './metrics.js';
import { rankHypervisors } from './placement.js';

/**
 * Leases through the balancer. For each request the hypervisors that are up are asked, in
 * parallel and briefly, for their containers: that finds the hypervisor already holding the
 * user's lease (it goes first) and gives fresh capacity for placing a new one. Candidates are
 * tried in order until one grants, within one deadline for the whole request.
 *
 * The user -> hypervisor cache only decides where to look first and is overruled by any
 * hypervisor that answers: a stale entry never sends anyone to the wrong container.
 */
export type BalancedLease = LeaseResponse & { hypervisor: string };
export type BalancedRelease = ReleaseResponse & { hypervisor: string };

interface Lookup {
  capacity: Map<string, Capacity>;
  /** The hypervisor whose containers list the user (leased, or being built for them). */
  holder: string | undefined;
  /** Up hypervisors that did not answer. */
  unanswered: Set<string>;
}

interface CacheEntry {
  hypervisor: string;
  container: string;
}

const CACHE_LIMIT = 10_000;

export interface LeaseRouterDeps {
  clients: readonly HypervisorClient[];
  health: HealthMonitor;
  config: Pick<BalancerConfig, 'lease'>;
  logger: Logger;
  metrics: BalancerMetrics;
}

export class LeaseRouter {
  private readonly clients: Map<string, HypervisorClient>;
  private readonly userLock = new KeyedMutex();
  private readonly inflight = new Map<string, number>();
  private readonly cache = new Map<string, CacheEntry>();

  constructor(private readonly deps: LeaseRouterDeps) {
    this.clients = new Map(deps.clients.map((c) => [c.name, c]));
  }

  /** Where the balancer last saw `user`'s lease (a hint, see above). */
  cachedHolder(user: string): string | undefined {
    return this.cache.get(user)?.hypervisor;
  }

  lease(user: string, publicKey: string): Promise<BalancedLease> {
    const started = performance.now();
    const { deadlineMs, attemptTimeoutMs, lookupTimeoutMs } = this.deps.config.lease;
    const deadline = started + deadlineMs;
    const remaining = () => deadline - performance.now();
    const { logger, metrics } = this.deps;
    return this.userLock.run(user, async () => {
      const look = await this.lookup(user, Math.min(lookupTimeoutMs, remaining()));
      const order = this.candidates(user, look);
      const failures: HypervisorCallError[] = [];
      for (const [i, name] of order.entries()) {
        const left = remaining();
        if (left <= 0) break;
        const client = this.clients.get(name)!;
        this.inflight.set(name, (this.inflight.get(name) ?? 0) + 1);
        try {
          const granted = await client.lease(user, publicKey, Math.min(attemptTimeoutMs, left));
          this.deps.health.reportSuccess(name);
          this.remember(user, { hypervisor: name, container: granted.container });
          const ms = Math.round((performance.now() - started) * 10) / 10;
          metrics.leaseSeconds.observe({ outcome: 'granted' }, ms / 1000);
          metrics.leases.inc({ hypervisor: name, renewed: String(granted.renewed) });
          logger.info('lease.granted', { user, hypervisor: name, container: granted.container, ms, renewed: granted.renewed, attempts: failures.length + 1 });
          return { ...granted, hypervisor: name };
        } catch (err) {
          if (!(err instanceof HypervisorCallError)) throw err;
          if (!err.retryable) throw err;
          failures.push(err);
          if (err.failure === 'unreachable' || err.failure === 'timeout') this.deps.health.reportFailure(name, err.message);
          metrics.failovers.inc({ hypervisor: name, code: err.code });
          logger.warn('lease.failover', { user, hypervisor: name, stage: 'lease', code: err.code, error: err.message, next: order[i + 1] ?? null, elapsedMs: Math.round(performance.now() - started) });
        } finally {
          this.inflight.set(name, this.inflight.get(name)! - 1);
        }
      }
      const refusal = this.refusal(order, failures, look, remaining() <= 0);
      metrics.leaseSeconds.observe({ outcome: 'refused' }, (performance.now() - started) / 1000);
      metrics.refusals.inc({ code: refusal.code });
      logger.warn('lease.refused', { user, code: refusal.code, error: refusal.message, ms: Math.round(performance.now() - started) });
      throw refusal;
    });
  }

  /** Release `user`'s lease on whichever hypervisor holds it (the cached one is asked first). */
  release(user: string): Promise<BalancedRelease> {
    const started = performance.now();
    const { deadlineMs, attemptTimeoutMs } = this.deps.config.lease;
    const timeout = () => Math.max(1, Math.min(attemptTimeoutMs, started + deadlineMs - performance.now()));
    return this.userLock.run(user, async () => {
      const unreachable: HypervisorCallError[] = [];
      const tryOne = async (client: HypervisorClient): Promise<BalancedRelease | undefined> => {
        try {
          const released = await client.release(user, timeout());
          return { ...released, hypervisor: client.name };
        } catch (err) {
          if (err instanceof HypervisorCallError && err.code === 'E_NO_LEASE') return undefined;
          if (err instanceof HypervisorCallError && err.retryable) {
            unreachable.push(err);
            return undefined;
          }
          throw err;
        }
      };
      const all = [...this.clients.values()];
      // As for leases: down ones are not asked, unless all are down.
      const askable = all.some((c) => this.deps.health.isUp(c.name)) ? (c: HypervisorClient) => this.deps.health.isUp(c.name) : () => true;
      const cached = all.find((c) => c.name === this.cache.get(user)?.hypervisor && askable(c));
      let released = cached ? await tryOne(cached) : undefined;
      if (!released) {
        const rest = all.filter((c) => c !== cached);
        for (const c of rest.filter((x) => !askable(x))) {
          unreachable.push(new HypervisorCallError(c.name, 'unreachable', 'E_HYPERVISOR_DOWN', `down (${this.deps.health.get(c.name)?.lastError ?? 'no answer'})`));
        }
        const answers = await Promise.all(rest.filter(askable).map(tryOne));
        released = answers.find((a) => a !== undefined);
      }
      this.cache.delete(user);
      if (released) {
        this.deps.logger.info('lease.released', { user, hypervisor: released.hypervisor, container: released.container, graceUntil: released.graceUntil, ms: Math.round(performance.now() - started) });
        return released;
      }
      if (unreachable.length > 0) {
        throw new VzsbError('E_HYPERVISOR_UNREACHABLE', `no reachable hypervisor holds a lease for ${user}; not asked: ${unreachable.map((e) => e.message).join('; ')}`);
      }
      throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease`);
    });
  }

  private async lookup(user: string, timeoutMs: number): Promise<Lookup> {
    const look: Lookup = { capacity: new Map(), holder: undefined, unanswered: new Set() };
    const all = [...this.clients.values()];
    // Down ones are skipped (their timeouts would slow every login), unless all are down:
    // then the polls may just be behind, and asking costs no more than refusing.
    const upNow = all.filter((c) => this.deps.health.isUp(c.name));
    const up = upNow.length > 0 ? upNow : all;
    await Promise.all(
      up.map(async (client) => {
        try {
          const { capacity, container: mine } = await client.userStatus(user, Math.max(1, timeoutMs));
          look.capacity.set(client.name, capacity);
          this.deps.health.reportSuccess(client.name, capacity);
          if (mine) {
            look.holder = client.name;
            this.remember(user, { hypervisor: client.name, container: mine.id });
          } else if (this.cache.get(user)?.hypervisor === client.name) {
            this.cache.delete(user);
          }
        } catch (err) {
          look.unanswered.add(client.name);
          if (err instanceof HypervisorCallError && (err.failure === 'unreachable' || err.failure === 'timeout')) {
            this.deps.health.reportFailure(client.name, err.message);
          }
          // Not asked = not a candidate for this request: the lease goes elsewhere.
          const code = err instanceof VzsbError ? err.code : 'E_INTERNAL';
          this.deps.metrics.failovers.inc({ hypervisor: client.name, code });
          this.deps.logger.warn('lease.failover', { user, hypervisor: client.name, stage: 'lookup', code, error: errorMessage(err) });
        }
      }),
    );
    return look;
  }

  /** The holder first; else (or after it) the ranked others. A cached holder that did not answer is tried first too. */
  private candidates(user: string, look: Lookup): string[] {
    const first = look.holder ?? [this.cache.get(user)?.hypervisor].find((h) => h !== undefined && look.unanswered.has(h));
    const ranked = rankHypervisors(
      [...this.clients.keys()].map((name) => ({
        name,
        up: look.capacity.has(name),
        capacity: look.capacity.get(name) ?? null,
        inflight: this.inflight.get(name) ?? 0,
      })),
    );
    // A degraded hypervisor keeps the leases it holds but gets no new one.
    const order = ranked.order.filter((n) => this.deps.health.acceptsNew(n) || !this.deps.health.isUp(n));
    return first ? [first, ...order.filter((n) => n !== first)] : order;
  }

  private refusal(order: string[], failures: HypervisorCallError[], look: Lookup, timedOut: boolean): VzsbError {
    const tried = failures.map((f) => `${f.message} (${f.code})`).join('; ');
    if (order.length === 0) {
      if (look.capacity.size === 0) {
        const down = [...this.clients.keys()].map((n) => `${n}: ${this.deps.health.get(n)?.lastError ?? 'down'}`).join('; ');
        return new VzsbError('E_NO_HYPERVISOR', `no hypervisor is up; ${down}`);
      }
      return new VzsbError('E_POOL_FULL', `every hypervisor that is up is full (${[...look.capacity.keys()].join(', ')})`);
    }
    if (timedOut) return new VzsbError('E_LEASE_FAILED', `no hypervisor granted a lease within ${this.deps.config.lease.deadlineMs} ms${tried ? `; ${tried}` : ''}`);
    if (failures.length > 0 && failures.every((f) => f.code === 'E_POOL_FULL')) return new VzsbError('E_POOL_FULL', `every hypervisor is full; ${tried}`);
    return new VzsbError('E_LEASE_FAILED', `no hypervisor could grant a lease; ${tried}`);
  }

  private remember(user: string, entry: CacheEntry): void {
    this.cache.delete(user);
    this.cache.set(user, entry);
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
  }
}
