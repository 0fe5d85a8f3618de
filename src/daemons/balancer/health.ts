import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Clock } from '../common/clock.js';
import type { Capacity } from '../../api/v1/hypervisor.js';
import { HypervisorCallError, type HypervisorClient } from './hypervisor-client.js';

/**
 * Health of every hypervisor: its /healthz polled in the background with a bounded timeout.
 * A hypervisor is down from the first failed poll (the second in a row when they time out),
 * or a failed call reported by the lease path, until a poll succeeds again. A hypervisor that answers `status: degraded` (its state
 * cannot be written, its container network is down, its disk is full) is up but gets no new
 * leases until it says ok again; its existing leases go on. Only a cache: every decision that
 * matters re-asks.
 */
export interface HypervisorHealthState {
  name: string;
  up: boolean;
  /** Last time it answered (epoch ms), or null if it never did. */
  lastSeen: number | null;
  /** When `up` last changed (epoch ms). */
  since: number;
  lastError: string | null;
  capacity: Capacity | null;
  /** Why it takes no new leases now (its own words), or null when it does. */
  degraded: string[] | null;
  /** Leases it gave while the user's previous holder was down, not settled yet (its last poll). */
  displaced: { user: string; from: string }[];
}

export interface HealthOptions {
  intervalMs: number;
  timeoutMs: number;
  clock: Clock;
  logger: Logger;
  /** Told of every up/down change (the metrics gauge). */
  onChange?: (name: string, up: boolean) => void;
  /** Called after every round of polls (the lease router settles displaced leases there). */
  afterRound?: () => void;
}

export class HealthMonitor {
  private readonly states = new Map<string, HypervisorHealthState>();
  /** Hypervisors whose state came from a poll or a call (not the initial guess). */
  private readonly known = new Set<string>();
  private displacedIndex = new Map<string, { holder: string; from: string }>();
  /** Polls in a row that timed out, per hypervisor still counted up. */
  private readonly slowPolls = new Map<string, number>();
  /** The timers of this round's polls that have not started, with what ends their wait. */
  private readonly pending = new Map<NodeJS.Timeout, () => void>();
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;

  constructor(
    private readonly clients: readonly HypervisorClient[],
    private readonly options: HealthOptions,
  ) {
    const now = options.clock.now();
    for (const c of clients) {
      // Unknown until the first poll: counted as down, so no lease goes to a hypervisor never seen.
      this.states.set(c.name, { name: c.name, up: false, lastSeen: null, since: now, lastError: 'not polled yet', capacity: null, degraded: null, displaced: [] });
    }
  }

  /** Poll every hypervisor once (awaited), then keep polling in the background. */
  async start(): Promise<void> {
    await this.pollAll();
    this.schedule();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    // Polls of the round not started yet are not started (their timers do not hold the process).
    for (const [t, resolve] of this.pending) {
      clearTimeout(t);
      resolve();
    }
    this.pending.clear();
    await this.running;
  }

  get(name: string): HypervisorHealthState | undefined {
    const s = this.states.get(name);
    return s && { ...s };
  }

  all(): HypervisorHealthState[] {
    return this.clients.map((c) => ({ ...this.states.get(c.name)! }));
  }

  isUp(name: string): boolean {
    return this.states.get(name)?.up ?? false;
  }

  /** Up and not degraded: a new lease may go there. */
  acceptsNew(name: string): boolean {
    const s = this.states.get(name);
    return (s?.up ?? false) && s?.degraded === null;
  }

  /** The capacity it last reported, or null. */
  capacityOf(name: string): Capacity | null {
    return this.states.get(name)?.capacity ?? null;
  }

  /** How long it has been down (ms), 0 when up. */
  downFor(name: string): number {
    const s = this.states.get(name);
    if (!s || s.up) return 0;
    return this.options.clock.now() - s.since;
  }

  /** The hypervisor holding `user`'s lease given while their previous holder was down, from the last polls. */
  displacedHolder(user: string): { holder: string; from: string } | undefined {
    return this.displacedIndex.get(user);
  }

  /** Every such lease: user, where it is, which hypervisor it replaced. */
  displacedAll(): { user: string; holder: string; from: string }[] {
    return [...this.displacedIndex].map(([user, d]) => ({ user, ...d }));
  }

  /** A call to `name` failed to reach it: down until the next good poll. */
  reportFailure(name: string, error: string): void {
    this.set(name, false, error);
  }

  /** A call to `name` succeeded. */
  reportSuccess(name: string, capacity?: Capacity): void {
    this.set(name, true, null, capacity);
  }

  /** One round over all hypervisors, in parallel. */
  pollAll(): Promise<void> {
    this.running = Promise.all(this.clients.map((c) => this.poll(c))).then(() => {
      this.indexDisplaced();
      this.options.afterRound?.();
    });
    return this.running;
  }

  private async poll(client: HypervisorClient): Promise<void> {
    try {
      const health = await client.health(this.options.timeoutMs);
      this.setDegraded(client.name, health.status === 'degraded' ? (health.degraded?.length ? health.degraded : ['degraded']) : null);
      this.states.get(client.name)!.displaced = health.displaced ?? [];
      this.set(client.name, true, null, health.capacity);
    } catch (err) {
      // One slow answer from a hypervisor that was up is not yet down: a busy host (or a busy
      // balancer) answers late now and then, and a false "down" costs its students a wait for
      // their holder. Two in a row are. Refused connections and error answers count at once.
      const timedOut = err instanceof HypervisorCallError && err.failure === 'timeout';
      const slow = (this.slowPolls.get(client.name) ?? 0) + 1;
      if (timedOut && this.isUp(client.name) && slow < 2) {
        this.slowPolls.set(client.name, slow);
        this.options.logger.info('hypervisor.slow', { hypervisor: client.name, error: errorMessage(err) });
        return;
      }
      this.slowPolls.delete(client.name);
      this.set(client.name, false, errorMessage(err));
      return;
    }
    this.slowPolls.delete(client.name);
  }

  private indexDisplaced(): void {
    const index = new Map<string, { holder: string; from: string }>();
    for (const s of this.states.values()) for (const d of s.displaced) index.set(d.user, { holder: s.name, from: d.from });
    this.displacedIndex = index;
  }

  /**
   * The background rounds: each hypervisor's poll at its own offset within the interval, so a
   * balancer in front of many hypervisors answers a steady trickle of polls, never a burst of
   * hundreds at once that would delay the lease requests behind it.
   */
  private schedule(): void {
    if (this.stopped) return;
    this.timer = setTimeout(() => {
      const n = this.clients.length;
      const spread = n > 1 ? this.options.intervalMs / n : 0;
      this.running = Promise.all(
        this.clients.map(
          (c, i) =>
            new Promise<void>((resolve) => {
              const t = setTimeout(() => {
                this.pending.delete(t);
                if (this.stopped) resolve();
                else void this.poll(c).finally(resolve);
              }, i * spread);
              t.unref();
              this.pending.set(t, resolve);
            }),
        ),
      ).then(() => {
        this.indexDisplaced();
        this.options.afterRound?.();
      });
      void this.running.finally(() => this.schedule());
    }, n0(this.clients.length, this.options.intervalMs));
    this.timer.unref();
  }

  private setDegraded(name: string, reasons: string[] | null): void {
    const s = this.states.get(name);
    if (!s) return;
    const was = s.degraded;
    s.degraded = reasons;
    if (reasons && !was) this.options.logger.warn('hypervisor.degraded', { hypervisor: name, reasons });
    else if (!reasons && was) this.options.logger.info('hypervisor.recovered', { hypervisor: name });
  }

  private set(name: string, up: boolean, error: string | null, capacity?: Capacity): void {
    const s = this.states.get(name);
    if (!s) return;
    const now = this.options.clock.now();
    if (up) s.lastSeen = now;
    if (capacity) s.capacity = capacity;
    s.lastError = error;
    if (s.up === up && this.known.has(name)) return;
    this.known.add(name);
    s.up = up;
    s.since = now;
    this.options.onChange?.(name, up);
    if (up) this.options.logger.info('hypervisor.up', { hypervisor: name });
    else this.options.logger.warn('hypervisor.down', { hypervisor: name, error });
  }
}

/** The pause between rounds: the interval, less the spread of a round over the hypervisors. */
function n0(count: number, intervalMs: number): number {
  return count > 1 ? intervalMs / count : intervalMs;
}
