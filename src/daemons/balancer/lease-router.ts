import { VzsbError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { KeyedMutex } from '../common/keyed-mutex.js';
import { Admission } from './admission.js';
import type { BalancerConfig } from './config.js';
import type { HealthMonitor } from './health.js';
import type { z } from 'zod';
import type { balancedLeaseSchema, balancedReleaseSchema } from '../../api/v1/balancer.js';
import { isPlaced, type HypervisorLeaseRequest, type LeaseRequest } from '../../api/v1/hypervisor.js';
import { HypervisorCallError, type HypervisorClient, type Placed } from './hypervisor-client.js';
import type { BalancerMetrics } from './metrics.js';
import { isFull, scoreOf } from './placement.js';
import { rendezvousOrder } from './rendezvous.js';

/**
 * Leases through the balancer, at a cost that does not grow with the number of hypervisors
 * (docs/balancer.md, "Placement"):
 *
 * - Every user has a home: the first of all configured hypervisors in the user's rendezvous
 *   order, the same for every balancer. The home settles where the user's lease lives: it
 *   grants it itself, or, when it has no container free, remembers the hypervisor the balancer
 *   proposes (a claim) and answers `placedAt`; a later request through any balancer is sent
 *   there. Two balancers racing for one user's first login ask the same home, which serves one
 *   request per user at a time: one container.
 * - The balancer asks only the hypervisor it knows holds the lease (it granted it, or a health
 *   poll lists it), else the home, else (home down) every hypervisor that is up, once, with a
 *   bound. Capacity comes from the health polls.
 * - A holder (or a home) that is down is waited for (E_HOLDER_DOWN, which the gateway retries
 *   with a message to the student) until it has been down `holderWaitMs`; then the user gets a
 *   new lease elsewhere, marked as displacing the old one, which is ended when its hypervisor
 *   is back (settleDisplaced, after each health round).
 */
export type BalancedLease = z.output<typeof balancedLeaseSchema>;
export type BalancedRelease = z.output<typeof balancedReleaseSchema>;

interface CacheEntry {
  hypervisor: string;
  container: string;
}

const CACHE_LIMIT = 100_000;
/** Spill targets tried for one request after the home's first choice failed. */
const MAX_MOVES = 3;

type HolderAnswer = BalancedLease | 'none' | 'down';

/** One request's clock and what went wrong so far. */
class Attempt {
  readonly failures: HypervisorCallError[] = [];
  constructor(
    readonly started: number,
    readonly deadline: number,
  ) {}
  left(): number {
    return this.deadline - performance.now();
  }
  ms(): number {
    return Math.round((performance.now() - this.started) * 10) / 10;
  }
}

export interface LeaseRouterDeps {
  clients: readonly HypervisorClient[];
  health: HealthMonitor;
  config: Pick<BalancerConfig, 'lease'>;
  logger: Logger;
  metrics: BalancerMetrics;
}

export class LeaseRouter {
  private readonly clients: Map<string, HypervisorClient>;
  private readonly names: string[];
  private readonly userLock = new KeyedMutex();
  private readonly inflight = new Map<string, number>();
  private readonly cache = new Map<string, CacheEntry>();
  private readonly admission: Admission;
  private readonly settling = new Set<string>();

  constructor(private readonly deps: LeaseRouterDeps) {
    this.clients = new Map(deps.clients.map((c) => [c.name, c]));
    this.names = deps.clients.map((c) => c.name);
    this.admission = new Admission(deps.config.lease.maxConcurrent, deps.config.lease.maxQueued);
  }

  /** Where the balancer last saw `user`'s lease (a hint: the holder itself is asked). */
  cachedHolder(user: string): string | undefined {
    return this.cache.get(user)?.hypervisor;
  }

  /** `user`'s home: the first of all configured hypervisors in their rendezvous order. */
  homeOf(user: string): string {
    return rendezvousOrder(user, this.names)[0]!;
  }

  /** Lease requests running and queued. */
  load(): { active: number; queued: number } {
    return this.admission.load();
  }

  lease(request: LeaseRequest): Promise<BalancedLease> {
    const started = performance.now();
    const attempt = new Attempt(started, started + this.deps.config.lease.deadlineMs);
    const { logger, metrics } = this.deps;
    return this.admission
      .run(attempt.left(), () => this.userLock.run(request.user, () => this.place(request, attempt)))
      .then(
        (granted) => {
          metrics.leaseSeconds.observe({ outcome: 'granted' }, attempt.ms() / 1000);
          metrics.leases.inc({ hypervisor: granted.hypervisor, renewed: String(granted.renewed) });
          logger.info('lease.granted', { user: request.user, hypervisor: granted.hypervisor, container: granted.container, ms: attempt.ms(), renewed: granted.renewed, movedFrom: granted.movedFrom, attempts: attempt.failures.length + 1 });
          return granted;
        },
        (err: unknown) => {
          const code = err instanceof VzsbError ? err.code : 'E_INTERNAL';
          metrics.leaseSeconds.observe({ outcome: 'refused' }, attempt.ms() / 1000);
          metrics.refusals.inc({ code });
          logger.warn('lease.refused', { user: request.user, code, error: errorMessage(err), ms: Math.round(attempt.ms()) });
          throw err;
        },
      );
  }

  private async place(request: LeaseRequest, attempt: Attempt): Promise<BalancedLease> {
    const { user } = request;
    const order = rendezvousOrder(user, this.names);
    const home = order[0]!;
    // 1. A holder the balancer knows: a displaced lease the polls list, or the one it granted.
    const known = this.deps.health.displacedHolder(user)?.holder ?? this.cache.get(user)?.hypervisor;
    if (known !== undefined) {
      const answer = await this.renewAt(known, request, attempt);
      if (answer === 'down') return this.holderDown(known, request, attempt, order);
      if (answer !== 'none') return answer;
      this.cache.delete(user);
    }
    // 2. The home settles it.
    if (this.deps.health.isUp(home)) {
      const answer = await this.viaHome(home, order, request, attempt);
      if (answer !== 'down') return answer;
    }
    // 3. The home is down: the lease may be elsewhere (placed there while the home was full).
    const found = await this.findHolder(user, attempt, new Set([home, ...(known === undefined ? [] : [known])]));
    if (found !== undefined) {
      const answer = await this.renewAt(found, request, attempt);
      if (answer === 'down') return this.holderDown(found, request, attempt, order);
      if (answer !== 'none') return answer;
    }
    return this.holderDown(home, request, attempt, order);
  }

  /** Renew at a hypervisor believed to hold the lease: the lease, 'none' (it holds none) or 'down'. */
  private async renewAt(name: string, request: LeaseRequest, attempt: Attempt): Promise<HolderAnswer> {
    if (!this.deps.health.isUp(name) || !this.clients.has(name)) return 'down';
    try {
      const answer = await this.call(name, { ...request, renewOnly: true }, attempt);
      return isPlaced(answer) ? 'none' : answer;
    } catch (err) {
      if (err instanceof HypervisorCallError && err.code === 'E_NO_LEASE') return 'none';
      if (isDown(err)) return 'down';
      throw err;
    }
  }

  /** Ask the home; follow its answer to where the lease lives, moving the claim when that one is full. */
  private async viaHome(home: string, order: string[], request: LeaseRequest, attempt: Attempt): Promise<BalancedLease | 'down'> {
    const tried = new Set([home]);
    // A degraded home (it says it cannot take new containers just now) still renews and says
    // where the user's lease lives, but a new lease goes elsewhere.
    const degraded = !this.deps.health.acceptsNew(home);
    let answer;
    try {
      answer = await this.call(home, { ...request, home: true, renewOnly: degraded || undefined, spill: this.spillTarget(order, tried) }, attempt);
    } catch (err) {
      if (isDown(err)) return 'down';
      if (degraded && err instanceof HypervisorCallError && err.code === 'E_NO_LEASE') return this.move(home, request, attempt, order);
      // It answers but cannot serve (5xx, an answer of the wrong shape): a new lease elsewhere at
      // once, displacing whatever it may hold (ended and claimed away once it works again).
      if (err instanceof HypervisorCallError && err.retryable && err.code !== 'E_POOL_FULL') return this.move(home, request, attempt, order);
      throw this.refusal(err, attempt);
    }
    if (!isPlaced(answer)) return answer;
    let target = answer.placedAt;
    for (let moves = 0; moves <= MAX_MOVES && attempt.left() > 0; moves++) {
      if (this.clients.has(target) && !tried.has(target)) {
        if (!this.deps.health.isUp(target)) return this.holderDown(target, request, attempt, order, home);
        try {
          const granted = await this.call(target, request, attempt);
          if (!isPlaced(granted)) return granted;
        } catch (err) {
          if (isDown(err)) return this.holderDown(target, request, attempt, order, home);
          if (!(err instanceof HypervisorCallError) || !err.retryable) throw this.refusal(err, attempt);
        }
      }
      tried.add(target);
      // The claimed one is full (or unknown here): claim the next choice instead of it.
      const next = this.spillTarget(order, tried);
      if (next === undefined) break;
      let claimed: string | null;
      try {
        claimed = (await this.client(home).claim(request.user, { hypervisor: next, replace: target }, this.attemptMs(attempt))).hypervisor;
        this.deps.health.reportSuccess(home);
      } catch (err) {
        if (err instanceof HypervisorCallError && err.code === 'E_HELD_HERE') return this.viaHome(home, order, request, attempt);
        if (isDown(err)) return 'down';
        throw this.refusal(err, attempt);
      }
      target = claimed ?? home;
      if (target === home) return this.viaHome(home, order, request, attempt);
    }
    throw this.refusal(undefined, attempt);
  }

  /**
   * The hypervisor that holds (or may hold) the user's lease is down. Wait for it (the gateway
   * retries E_HOLDER_DOWN) until it has been down `holderWaitMs`; then give a new lease on the
   * next choice, marked as displacing the one on `down`.
   */
  private async holderDown(down: string, request: LeaseRequest, attempt: Attempt, order: string[], home?: string): Promise<BalancedLease> {
    const downMs = this.deps.health.downFor(down);
    const waitMs = this.deps.config.lease.holderWaitMs;
    if (this.names.every((n) => !this.deps.health.isUp(n))) {
      throw new VzsbError('E_NO_HYPERVISOR', `no hypervisor is up; ${this.names.map((n) => `${n}: ${this.deps.health.get(n)?.lastError ?? 'down'}`).join('; ')}`);
    }
    if (downMs < waitMs) {
      throw new VzsbError('E_HOLDER_DOWN', `the hypervisor that holds (or settles) ${request.user}'s lease, ${down}, does not answer (down for ${Math.round(downMs)} ms); waiting up to ${waitMs} ms for it before giving a new container`);
    }
    return this.move(down, request, attempt, order, home);
  }

  /** A new lease on the next choice after `from`, marked as displacing the lease `from` may hold. */
  private async move(from: string, request: LeaseRequest, attempt: Attempt, order: string[], home?: string): Promise<BalancedLease> {
    const down = from;
    const downMs = this.deps.health.downFor(down);
    const tried = new Set([down]);
    for (let moves = 0; moves <= MAX_MOVES && attempt.left() > 0; moves++) {
      const target = this.spillTarget(order, tried);
      if (target === undefined) break;
      tried.add(target);
      try {
        const granted = await this.call(target, { ...request, displaced: down }, attempt);
        if (isPlaced(granted)) continue;
        this.deps.logger.warn('lease.moved', { user: request.user, from: down, to: target, downMs: Math.round(downMs) });
        if (home !== undefined && home !== down && home !== target) {
          // The home's claim pointed at the one that is down: point it at the new lease.
          await this.client(home)
            .claim(request.user, { hypervisor: target, replace: down }, this.attemptMs(attempt))
            .catch((err: unknown) => this.deps.logger.warn('lease.claim_failed', { user: request.user, home, error: err }));
        }
        return { ...granted, movedFrom: down };
      } catch (err) {
        if (!(err instanceof HypervisorCallError) || !err.retryable) throw this.refusal(err, attempt);
      }
    }
    throw this.refusal(undefined, attempt);
  }

  /** Every hypervisor that is up (but `skip`) is asked once, in parallel, who holds `user`'s lease. */
  private async findHolder(user: string, attempt: Attempt, skip: Set<string>): Promise<string | undefined> {
    const ms = Math.min(this.deps.config.lease.lookupTimeoutMs, Math.max(1, attempt.left()));
    const asked = this.names.filter((n) => !skip.has(n) && this.deps.health.isUp(n));
    let holder: string | undefined;
    await Promise.all(
      asked.map(async (name) => {
        try {
          const status = await this.client(name).userStatus(user, ms);
          this.deps.health.reportSuccess(name, status.capacity);
          if (status.container && status.container.state === 'leased') holder = name;
        } catch (err) {
          this.noteFailure(name, err, attempt, 'lookup');
        }
      }),
    );
    return holder;
  }

  /**
   * Where a new lease should go when the home cannot take it: the first in the user's order
   * that is up and, by its last poll less this balancer's leases in flight there, has a
   * container ready or room to build one; else the first that is up and not full.
   */
  private spillTarget(order: string[], exclude: Set<string>): string | undefined {
    let fallback: string | undefined;
    for (const name of order) {
      if (exclude.has(name) || !this.deps.health.acceptsNew(name)) continue;
      const capacity = this.deps.health.capacityOf(name);
      if (!capacity) continue;
      const score = scoreOf(capacity, this.inflight.get(name) ?? 0);
      if (score.ready > 0 || score.room > 0) return name;
      if (fallback === undefined && !isFull(scoreOf(capacity, 0))) fallback = name;
    }
    return fallback;
  }

  /** One lease call with this request's remaining time; failures are noted and rethrown. */
  private async call(name: string, body: HypervisorLeaseRequest, attempt: Attempt): Promise<BalancedLease | Placed> {
    if (attempt.left() <= 0) throw this.refusal(undefined, attempt);
    this.inflight.set(name, (this.inflight.get(name) ?? 0) + 1);
    try {
      const answer = await this.client(name).lease(body, this.attemptMs(attempt));
      this.deps.health.reportSuccess(name);
      if (isPlaced(answer)) return answer;
      this.remember(body.user, { hypervisor: name, container: answer.container });
      return { ...answer, hypervisor: name };
    } catch (err) {
      this.noteFailure(name, err, attempt, 'lease');
      throw err;
    } finally {
      this.inflight.set(name, this.inflight.get(name)! - 1);
    }
  }

  private noteFailure(name: string, err: unknown, attempt: Attempt, stage: string): void {
    if (!(err instanceof HypervisorCallError)) return;
    if (err.code === 'E_NO_LEASE' || !err.retryable) return;
    attempt.failures.push(err);
    if (err.failure === 'unreachable' || err.failure === 'timeout') this.deps.health.reportFailure(name, err.message);
    this.deps.metrics.failovers.inc({ hypervisor: name, code: err.code });
    this.deps.logger.warn('lease.failover', { hypervisor: name, stage, code: err.code, error: err.message, elapsedMs: Math.round(attempt.ms()) });
  }

  private attemptMs(attempt: Attempt): number {
    return Math.max(1, Math.min(this.deps.config.lease.attemptTimeoutMs, attempt.left()));
  }

  private client(name: string): HypervisorClient {
    const c = this.clients.get(name);
    if (!c) throw new VzsbError('E_UNKNOWN_HYPERVISOR', `no hypervisor named ${name} in this balancer's configuration`);
    return c;
  }

  /** The answer when no hypervisor granted: the last error of an answering one, or why none could. */
  private refusal(err: unknown, attempt: Attempt): VzsbError {
    if (err instanceof HypervisorCallError && !err.retryable) return err;
    if (err instanceof VzsbError && !(err instanceof HypervisorCallError)) return err;
    if (err instanceof HypervisorCallError) attempt.failures.push(err);
    const tried = attempt.failures.map((f) => `${f.message} (${f.code})`).join('; ');
    if (attempt.left() <= 0) return new VzsbError('E_LEASE_FAILED', `no hypervisor granted a lease within ${this.deps.config.lease.deadlineMs} ms${tried ? `; ${tried}` : ''}`);
    if (this.names.every((n) => !this.deps.health.isUp(n))) {
      return new VzsbError('E_NO_HYPERVISOR', `no hypervisor is up; ${this.names.map((n) => `${n}: ${this.deps.health.get(n)?.lastError ?? 'down'}`).join('; ')}`);
    }
    if (attempt.failures.length === 0 || attempt.failures.every((f) => f.code === 'E_POOL_FULL')) {
      return new VzsbError('E_POOL_FULL', `every hypervisor that is up is full${tried ? `; ${tried}` : ''}`);
    }
    return new VzsbError('E_LEASE_FAILED', `no hypervisor could grant a lease; ${tried}`);
  }

  // ---------------------------------------------------------------- release

  /**
   * End `session` of `user`'s lease (the lease ends with its last session), or the whole lease
   * without one: at the known holder, else where the home says, else (home down) wherever it is.
   */
  release(user: string, session?: string): Promise<BalancedRelease> {
    const started = performance.now();
    const { deadlineMs, attemptTimeoutMs } = this.deps.config.lease;
    const timeout = () => Math.max(1, Math.min(attemptTimeoutMs, started + deadlineMs - performance.now()));
    return this.userLock.run(user, async () => {
      const unreachable: string[] = [];
      const tryOne = async (name: string): Promise<BalancedRelease | undefined> => {
        if (!this.deps.health.isUp(name)) {
          unreachable.push(`${name}: down (${this.deps.health.get(name)?.lastError ?? 'no answer'})`);
          return undefined;
        }
        try {
          return { ...(await this.client(name).release(user, timeout(), session)), hypervisor: name };
        } catch (err) {
          if (err instanceof HypervisorCallError && err.code === 'E_NO_LEASE') return undefined;
          if (err instanceof HypervisorCallError && err.retryable) {
            unreachable.push(err.message);
            return undefined;
          }
          throw err;
        }
      };
      const home = this.homeOf(user);
      const known = this.deps.health.displacedHolder(user)?.holder ?? this.cache.get(user)?.hypervisor;
      let released = known === undefined ? undefined : await tryOne(known);
      if (!released && known !== home && this.deps.health.isUp(home)) {
        released = await tryOne(home);
        if (!released) {
          const status = await this.client(home).userStatus(user, timeout()).catch(() => undefined);
          if (status?.claim && status.claim !== known && this.clients.has(status.claim)) released = await tryOne(status.claim);
          else if (status && unreachable.length === 0) {
            this.cache.delete(user);
            throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease`);
          }
        }
      }
      if (!released) {
        const rest = this.names.filter((n) => n !== known && n !== home);
        const answers = await Promise.all(rest.map(tryOne));
        released = answers.find((a) => a !== undefined);
      }
      if (released?.released !== false) this.cache.delete(user);
      if (released) {
        this.deps.logger.info('lease.released', { user, session, hypervisor: released.hypervisor, container: released.container, sessions: released.sessions, graceUntil: released.graceUntil, ms: Math.round(performance.now() - started) });
        return released;
      }
      if (unreachable.length > 0) throw new VzsbError('E_HYPERVISOR_UNREACHABLE', `no reachable hypervisor holds a lease for ${user}; not asked: ${unreachable.join('; ')}`);
      throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease`);
    });
  }

  // ---------------------------------------------------------------- displaced leases

  /**
   * After a health round: every lease given while its user's previous holder was down, whose
   * previous holder is up again, gets that old lease ended (and, where it was the home, the
   * home's claim pointed at the new one), then is marked settled. Idempotent: several balancers
   * may do it at once.
   */
  settleDisplaced(): void {
    for (const d of this.deps.health.displacedAll()) {
      if (this.settling.has(d.user) || !this.deps.health.isUp(d.from) || !this.clients.has(d.from) || !this.clients.has(d.holder)) continue;
      this.settling.add(d.user);
      const ms = this.deps.config.lease.attemptTimeoutMs;
      void (async () => {
        const from = this.client(d.from);
        if (this.homeOf(d.user) === d.from) {
          await from.claim(d.user, { hypervisor: d.holder, endLease: true }, ms);
        } else {
          await from.resetUser(d.user, { force: true, wait: false }, ms).catch((err: unknown) => {
            if (!(err instanceof HypervisorCallError && err.code === 'E_NO_LEASE')) throw err;
          });
        }
        await this.client(d.holder).settle(d.user, ms);
        this.deps.logger.warn('lease.settled', { user: d.user, ended: d.from, kept: d.holder });
      })()
        .catch((err: unknown) => this.deps.logger.warn('lease.settle_failed', { user: d.user, from: d.from, holder: d.holder, error: err }))
        .finally(() => this.settling.delete(d.user));
    }
  }

  private remember(user: string, entry: CacheEntry): void {
    this.cache.delete(user);
    this.cache.set(user, entry);
    if (this.cache.size > CACHE_LIMIT) this.cache.delete(this.cache.keys().next().value!);
  }
}

/** The hypervisor did not answer, or said it is stopping: it may still hold the lease. */
function isDown(err: unknown): boolean {
  return err instanceof HypervisorCallError && (err.failure === 'unreachable' || err.failure === 'timeout' || err.code === 'E_SHUTTING_DOWN');
}
