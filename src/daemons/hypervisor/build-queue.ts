import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Clock } from '../common/clock.js';
import type { KeyedMutex } from '../common/keyed-mutex.js';
import type { ContainerDriver, HostKey } from '../drivers/types.js';
import type { ContainerRecord, ContainerTable } from './container-table.js';
import type { LeaseRecords } from './lease-records.js';

export interface BuildQueueDeps {
  table: ContainerTable;
  driver: ContainerDriver;
  /** The pool's per-container mutex: every driver call for one container runs under it. */
  containerLock: KeyedMutex;
  leaseRecords: LeaseRecords;
  /** The pool's host key cache: a build reads the new key (off the lease path). */
  hostKeys: Map<string, HostKey>;
  clock: Clock;
  log: Logger;
  observer: { resetDone?(ok: boolean, seconds: number): void };
  /** config.buildConcurrency */
  concurrency: number;
  /** config.standby, the first standby target */
  standby: number;
  /** config.max */
  max: number;
  /** Save the state; never rejects. */
  persist(): Promise<boolean>;
  /** Keep a promise as the pool's background work (Pool.settled waits for it). */
  track(p: Promise<unknown>): void;
  /** Whether the state can be written now: no build starts while it cannot. */
  writable(): boolean;
  stopping(): boolean;
}

/**
 * The pool's builds: at most `concurrency` builds and resets at once (the others wait for a
 * slot, in order), one reset at a time per container, broken containers destroyed so their
 * number is built again, and the refill to the standby target. A build is destroy (unless the
 * number is fresh) + create + start under the container's lock, saved as `building` first.
 */
export class BuildQueue {
  private running = 0;
  private readonly waiters: (() => void)[] = [];
  private readonly resets = new Map<string, Promise<boolean>>();
  private target: number;

  constructor(private readonly d: BuildQueueDeps) {
    this.target = d.standby;
  }

  /** The standby target now. */
  get standby(): number {
    return this.target;
  }

  /** Change the standby target (schedule); refills at once when it grows. */
  setStandby(n: number): void {
    const target = Math.min(Math.max(0, n), this.d.max);
    this.d.log.info('pool.standby', { from: this.target, to: target });
    this.target = target;
    this.d.track(this.replenish());
  }

  /** Reserve the lowest free number for a new container (for `user`: a miss), if below max and not stopping. */
  reserve(user?: string): ContainerRecord | undefined {
    if (this.d.stopping()) return undefined;
    return this.d.table.reserve(this.d.clock.now(), user);
  }

  /** Build containers until `standby` are clean or being built, without exceeding max. */
  async replenish(): Promise<void> {
    // No new builds while the state cannot be written (they resume when it can).
    if (!this.d.writable()) return;
    const builds: Promise<boolean>[] = [];
    for (;;) {
      if (this.d.table.unreserved() >= this.target) break;
      const rec = this.reserve();
      if (!rec) break;
      builds.push(this.buildLocked(rec, true));
    }
    await Promise.all(builds);
  }

  /** Build a reserved record into a clean, running container. False (and the record gone or broken) on failure. */
  async buildLocked(rec: ContainerRecord, fresh: boolean): Promise<boolean> {
    await this.slot();
    try {
      return await this.d.containerLock.run(rec.id, () => this.build(rec, fresh));
    } finally {
      this.releaseSlot();
    }
  }

  /** Reset a dirty container in the background; resolves true once it is clean again. */
  scheduleReset(rec: ContainerRecord): Promise<boolean> {
    const pending = this.resets.get(rec.id);
    if (pending) return pending;
    const p = (async () => {
      await this.slot();
      try {
        return await this.d.containerLock.run(rec.id, async () => {
          if (!this.d.table.has(rec) || rec.state !== 'dirty') return rec.state === 'clean';
          // Waits for the disk (the store's recovery schedules it again).
          if (!this.d.writable() || this.d.stopping()) return false;
          return this.build(rec, false);
        });
      } finally {
        this.releaseSlot();
        this.resets.delete(rec.id);
      }
    })();
    this.resets.set(rec.id, p);
    this.d.track(p.then(() => this.replenish()));
    return p;
  }

  /** From inside a container's lock: queue the reset behind it instead of waiting on ourselves. */
  scheduleResetAfterLock(rec: ContainerRecord): void {
    setImmediate(() => void this.scheduleReset(rec));
  }

  /** A broken container: destroy it so its number is free for a fresh build. */
  async repair(rec: ContainerRecord): Promise<boolean> {
    return this.d.containerLock.run(rec.id, async () => {
      if (rec.state !== 'broken' || !this.d.table.has(rec) || !this.d.writable()) return false;
      try {
        await this.d.driver.destroy(rec.id);
      } catch (err) {
        this.d.log.warn('container.repair_failed', { container: rec.id, error: err });
        return false;
      }
      this.d.table.remove(rec);
      this.d.hostKeys.delete(rec.id);
      await this.d.persist();
      return true;
    });
  }

  /** destroy (unless `fresh`: a number nobody used) + create + start, under the container's lock. */
  private async build(rec: ContainerRecord, fresh: boolean): Promise<boolean> {
    const { table, driver, clock, log } = this.d;
    const started = performance.now();
    this.d.hostKeys.delete(rec.id);
    try {
      table.move(rec, 'building', clock.now());
      await this.d.persist();
      if (!fresh) {
        // A record write still running would land in the new clone.
        await this.d.leaseRecords.pending(rec.id);
        await driver.destroy(rec.id);
      }
      const info = await driver.create(rec.id);
      await driver.start(rec.id);
      this.d.hostKeys.set(rec.id, await driver.hostKey(rec.id)); // off the lease path
      rec.address = info.address;
      rec.error = undefined;
      table.move(rec, 'clean', clock.now());
      await this.d.persist();
      const ms = Math.round(performance.now() - started);
      this.d.observer.resetDone?.(true, ms / 1000);
      log.info('lease.reset', { container: rec.id, user: rec.lastUser, ms });
      rec.lastUser = undefined;
      return true;
    } catch (err) {
      const ms = Math.round(performance.now() - started);
      this.d.observer.resetDone?.(false, ms / 1000);
      log.error('container.broken', { container: rec.id, error: err, ms });
      rec.reservedFor = undefined;
      table.move(rec, 'broken', clock.now());
      rec.error = errorMessage(err).slice(0, 300);
      await driver.destroy(rec.id).then(
        () => table.remove(rec),
        () => undefined,
      );
      await this.d.persist();
      return false;
    }
  }

  private async slot(): Promise<void> {
    if (this.running < this.d.concurrency) {
      this.running++;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }

  private releaseSlot(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.running--;
  }
}
