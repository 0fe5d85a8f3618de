import { VzsbError, errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { Clock } from '../common/clock.js';
import { KeyedMutex } from '../common/keyed-mutex.js';
import type { ContainerDriver, HostKey } from '../drivers/types.js';
import type * as v1 from '../../api/v1/hypervisor.js';
import type { Capacity, ContainerView, LeaseView, ReclaimReason, ReclaimReport, ResetReport } from '../../api/v1/hypervisor.js';
import type { PoolConfig } from './config.js';
import { BuildQueue } from './build-queue.js';
import { ContainerTable, type ContainerRecord, type SessionRecord } from './container-table.js';
import { LeaseRecords } from './lease-records.js';
import type { LeaseStore, StoredRecord, StoredState } from './lease-store.js';
import { planReconcile } from './reconcile.js';
import { claimExpired, expiry, keptPastGrace, reclaimReason, staleSessions } from './reclaim-policy.js';

/**
 * The warm pool of one hypervisor: container states, leases keyed by user, reclaim and reset.
 * The one object the daemon uses; behind it, each concern has a module: the records and their
 * state transitions (container-table.ts), what start does (reconcile.ts, a pure plan applied
 * here), when a lease ends (reclaim-policy.ts), builds and resets (build-queue.ts), the
 * containers' own lease records (lease-records.ts).
 *
 * Invariants:
 * - State changes are synchronous (no await between a check and the change), so picking a
 *   clean container for a user is atomic: no container is handed to two users.
 * - Every driver call for one container runs under that container's mutex; lease and release
 *   for one user run under that user's mutex.
 * - A new lease is on disk (state file and the container's own lease record) before it is
 *   returned; while the state cannot be written, new leases are refused (E_STATE_UNWRITABLE)
 *   and every other change is kept in memory and written once the disk takes it again.
 * - A storage error never ends a lease, resets or destroys a container: renewals, releases and
 *   reclaim go on in memory; resets and builds wait until the state is writable.
 * - A container only becomes clean again through destroy + create (reset).
 */
export type { ContainerState } from './lease-store.js';
export type { ContainerRecord } from './container-table.js';
export { parseLeaseRecord, type LeaseRecord } from './lease-records.js';

export type { SessionRecord } from './container-table.js';

/** How a lease request is to be served (all optional: a plain lease). */
export interface LeaseOptions {
  /** The login session this request is for: its key is added to the lease's keys, removed when it ends. */
  session?: string;
  /** Refuse (E_TOO_MANY) when the user already has this many other sessions on the lease. */
  maxSessions?: number;
  /** This hypervisor is the user's home: a claim sends the user elsewhere; when full, `spill` is claimed. */
  home?: { spill?: string };
  /** Renew a lease held here (or, with home, answer its claim); never grant a new one (E_NO_LEASE). */
  renewOnly?: boolean;
  /** The user's lease on this hypervisor (by name) could not be reached: this one replaces it. */
  displaced?: string;
  /**
   * This hypervisor's last health check failed for these reasons: a lease held here is renewed
   * (and a home still answers its claim), but a new one is refused (E_DEGRADED, worth another).
   */
  refuseNew?: string[];
}

/** A lease's sessions beyond this are dropped oldest first (gateways that died never end theirs). */
const SESSIONS_KEPT = 256;

/** A lease as the pool grants it: the API's answer (src/api/v1/hypervisor.ts) but the ssh port, which the app adds. */
export type Lease = Required<Omit<v1.Lease, 'sshPort'>>;
/** A home's answer when the user's lease lives (or is to live) on another hypervisor (the app adds the user). */
export type Placed = Omit<v1.Placed, 'user'>;
/** What ending a session or a lease did (the app adds the user). */
export type Released = Omit<v1.Released, 'user'>;

export interface ReconcileReport {
  /** Where the state came from: the state file, the previous one, or none (containers' records only). */
  stateSource: 'current' | 'previous' | 'none';
  /** Containers whose state came from their own lease record (newer than the state file, or no file). */
  fromRecords: string[];
  kept: string[];
  leasesKept: string[];
  orphansDestroyed: string[];
  orphansAdopted: string[];
  recordsDropped: string[];
  leasesLost: string[];
  rebuilt: string[];
}

/** What the metrics see; every method is optional. */
export interface PoolObserver {
  leaseGranted?(hit: boolean, seconds: number, renewed: boolean): void;
  leaseRefused?(code: string): void;
  reclaimed?(reason: ReclaimReason): void;
  resetDone?(ok: boolean, seconds: number): void;
}

export interface PoolDeps {
  driver: ContainerDriver;
  store: LeaseStore;
  clock: Clock;
  logger: Logger;
  config: PoolConfig;
  /** Container id prefix, as the driver lists them. */
  prefix: string;
  observer?: PoolObserver;
}

const LEASE_ATTEMPTS = 3;
/** How long a lease waits for a container being reset when the pool is at max. */
const LEASE_WAIT_MS = 20_000;

/** Errors of the disk rather than of the container: full, read-only, over quota, failing. */
const STORAGE_ERRNOS = new Set(['ENOSPC', 'EROFS', 'EDQUOT', 'EIO', 'EACCES', 'EPERM']);
export function isStorageError(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (code === 'E_STATE_UNWRITABLE' || (typeof code === 'string' && STORAGE_ERRNOS.has(code))) return true;
  }
  return false;
}

export class Pool {
  private readonly driver: ContainerDriver;
  private readonly store: LeaseStore;
  private readonly clock: Clock;
  private readonly log: Logger;
  private readonly config: PoolConfig;
  private readonly prefix: string;
  private readonly observer: PoolObserver;
  /** The containers, their states (each change checked against container-table's TRANSITIONS) and the user indexes. */
  private readonly table: ContainerTable;
  private readonly leaseRecords: LeaseRecords;
  /** As the users' home: user -> the hypervisor their lease was placed on. */
  private readonly claims = new Map<string, { hypervisor: string; since: number }>();
  private readonly hostKeys = new Map<string, HostKey>();
  private readonly containerLock = new KeyedMutex();
  private readonly userLock = new KeyedMutex();
  private readonly background = new Set<Promise<unknown>>();
  private readonly cleanWaiters: (() => void)[] = [];
  /** Builds and resets (build slots, one reset per container), the refill to standby. */
  private readonly builds: BuildQueue;
  private stopping = false;

  constructor(deps: PoolDeps) {
    this.driver = deps.driver;
    this.store = deps.store;
    this.clock = deps.clock;
    this.log = deps.logger;
    this.config = deps.config;
    this.prefix = deps.prefix;
    this.observer = deps.observer ?? {};
    this.table = new ContainerTable(deps.prefix, deps.config.max, (_rec, to) => {
      if (to === 'clean' || to === 'broken') for (const wake of this.cleanWaiters.splice(0)) wake();
    });
    this.leaseRecords = new LeaseRecords(deps.driver, () => this.clock.now());
    this.builds = new BuildQueue({
      table: this.table,
      driver: deps.driver,
      containerLock: this.containerLock,
      leaseRecords: this.leaseRecords,
      hostKeys: this.hostKeys,
      clock: deps.clock,
      log: deps.logger,
      observer: this.observer,
      concurrency: deps.config.buildConcurrency,
      standby: deps.config.standby,
      max: deps.config.max,
      persist: () => this.persist(),
      track: (p) => this.track(p),
      writable: () => this.store.writable,
      stopping: () => this.stopping,
    });
    this.store.watch({
      onFailing: (error) => this.log.error('state.unwritable', { path: this.store.path, error, leased: this.capacity().leased }),
      onRecovered: () => {
        if (this.stopping) return;
        this.log.info('state.writable', { path: this.store.path });
        // What waited for the disk: resets of released containers, the refill.
        for (const r of this.table.values()) if (r.state === 'dirty') this.track(this.builds.scheduleReset(r));
        this.track(this.replenish());
      },
    });
  }

  // ---------------------------------------------------------------- start

  /**
   * Reconcile the state file with the driver's list: the runtime is the truth for what exists,
   * the file for who holds what. Then refill to standby (in the background).
   */
  async start(): Promise<ReconcileReport> {
    const loaded = await this.store.loadWithFallback();
    const report: ReconcileReport = {
      stateSource: loaded.source, fromRecords: [],
      kept: [], leasesKept: [], orphansDestroyed: [], orphansAdopted: [], recordsDropped: [], leasesLost: [], rebuilt: [],
    };
    if (loaded.damaged) {
      this.log.error('state.damaged', { path: this.store.path, problems: loaded.problems, using: loaded.source, keptAs: this.store.damagedPath });
    }
    const live = await this.driver.list();
    const leaseRecords = await this.leaseRecords.readAll(live.map((c) => c.id));
    const plan = planReconcile({
      saved: loaded.state,
      damaged: loaded.damaged,
      live,
      leaseRecords,
      now: this.clock.now(),
      orphans: this.config.orphans,
      claimSeconds: this.config.claimSeconds,
      ours: (id) => this.table.numberOf(id) !== undefined,
    });
    for (const c of plan.claims) this.claims.set(c.user, { hypervisor: c.hypervisor, since: c.since });
    for (const f of plan.fromRecords) {
      report.fromRecords.push(f.id);
      this.log.warn('state.from_record', { container: f.id, record: f.record.state, user: f.record.user, stateFile: f.stateFile });
    }
    const toReset: ContainerRecord[] = [];
    const toStart: ContainerRecord[] = [];
    for (const rec of plan.dropped) {
      report.recordsDropped.push(rec.id);
      if (rec.state === 'leased' && rec.user) {
        report.leasesLost.push(rec.user);
        this.log.warn('lease.lost', { user: rec.user, container: rec.id, reason: 'container no longer exists' });
      }
    }
    for (const { record: r, action } of plan.entries) {
      this.table.insert(r);
      if (action === 'keep-lease' || action === 'start') report.leasesKept.push(r.user!);
      if (action === 'start') toStart.push(r);
      if (action === 'keep') report.kept.push(r.id);
      if (action === 'rebuild') report.rebuilt.push(r.id);
      if (action === 'adopt') report.orphansAdopted.push(r.id);
      if (action === 'rebuild' || action === 'adopt') toReset.push(r);
    }
    for (const id of plan.destroy) {
      await this.containerLock.run(id, () => this.driver.destroy(id));
      report.orphansDestroyed.push(id);
    }
    // A kept lease whose container stopped (host reboot): start it again, or reclaim it.
    for (const r of toStart) {
      try {
        await this.containerLock.run(r.id, () => this.driver.start(r.id));
      } catch (err) {
        this.log.warn('lease.lost', { user: r.user, container: r.id, reason: `cannot start: ${errorMessage(err)}`, error: err });
        report.leasesLost.push(r.user!);
        this.endLease(r, 'lost');
        toReset.push(r);
      }
    }
    await this.persist();
    if (report.fromRecords.length > 0 || loaded.damaged) {
      this.log.warn('state.rebuilt', { using: loaded.source, fromRecords: report.fromRecords, leasesKept: report.leasesKept, reset: report.rebuilt.concat(report.orphansAdopted) });
    }
    this.log.info('pool.reconciled', { ...report });
    for (const r of toReset) this.builds.scheduleReset(r);
    this.track(this.replenish());
    return report;
  }

  // ---------------------------------------------------------------- leases

  /**
   * Grant `user` a container with `publicKey` authorized (with the keys of the lease's other
   * live sessions); the same one if they already hold one. As the user's home (`options.home`)
   * it may answer where the user's lease lives instead (a claim), see docs/balancer.md.
   */
  lease(user: string, publicKey: string): Promise<Lease>;
  lease(user: string, publicKey: string, options: LeaseOptions): Promise<Lease | Placed>;
  lease(user: string, publicKey: string, options: LeaseOptions = {}): Promise<Lease | Placed> {
    const started = performance.now();
    return this.userLock.run(user, async () => {
      const deadline = started + LEASE_WAIT_MS;
      let hit = true;
      let failures = 0;
      while (failures < LEASE_ATTEMPTS) {
        if (this.stopping) throw new VzsbError('E_SHUTTING_DOWN', 'the hypervisor is shutting down; try again');
        const existing = this.table.leaseOf(user);
        let rec: ContainerRecord;
        if (existing) {
          rec = existing;
        } else if (options.home && this.claimOf(user) !== undefined) {
          return { placedAt: this.claimOf(user)! };
        } else if (options.renewOnly) {
          throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease here`);
        } else if (options.refuseNew) {
          this.observer.leaseRefused?.('E_DEGRADED');
          this.log.warn('lease.refused', { user, code: 'E_DEGRADED', reasons: options.refuseNew });
          throw new VzsbError('E_DEGRADED', `this hypervisor takes no new sandboxes just now: ${options.refuseNew.join('; ')}`);
        } else if (!this.store.writable) {
          this.observer.leaseRefused?.('E_STATE_UNWRITABLE');
          this.log.warn('lease.refused', { user, code: 'E_STATE_UNWRITABLE', error: this.store.health().error });
          throw unwritable();
        } else {
          const clean = this.table.takeClean(user, this.clock.now());
          if (clean) {
            rec = clean;
          } else {
            hit = false;
            const reserved = this.builds.reserve(user);
            if (!reserved && options.home?.spill !== undefined) {
              // Full here: the user goes to the balancer's next choice, and this home remembers it.
              this.claims.set(user, { hypervisor: options.home.spill, since: this.clock.now() });
              await this.persist();
              this.log.info('lease.placed', { user, at: options.home.spill, ...this.capacity() });
              return { placedAt: options.home.spill };
            }
            if (!reserved && this.table.cleanSoon() && performance.now() < deadline) {
              // At max, but a container is being built or reset: take the first one that turns clean.
              await this.waitForClean(deadline);
              continue;
            }
            if (!reserved) {
              this.observer.leaseRefused?.('E_POOL_FULL');
              this.log.warn('lease.refused', { user, code: 'E_POOL_FULL', ...this.capacity() });
              throw new VzsbError('E_POOL_FULL', `no container is free on this hypervisor (all ${this.config.max} in use or being reset)`);
            }
            if (!(await this.builds.buildLocked(reserved, true))) {
              failures++;
              continue;
            }
            rec = reserved;
            // An admin reset may have taken it back while we were resumed.
            if (!this.table.has(rec) || rec.state !== 'clean') continue;
            rec.reservedFor = undefined;
            this.table.assign(rec, user, this.clock.now());
          }
        }
        const granted = await this.grant(rec, user, publicKey, existing !== undefined, hit, started, options);
        if (granted) return granted;
        failures++;
      }
      throw new VzsbError('E_LEASE_FAILED', 'no container could be prepared for you; try again in a moment');
    });
  }

  /**
   * End one session of `user`'s lease (its key is no longer accepted); when it was the last
   * (or without `session`: at once) end the lease now, or start its grace period.
   */
  release(user: string, session?: string): Promise<Released> {
    return this.userLock.run(user, async () => {
      const rec = this.table.leaseOf(user);
      if (!rec) throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease`);
      const now = this.clock.now();
      if (session !== undefined && rec.sessions) {
        const left = rec.sessions.filter((s) => s.id !== session);
        if (left.length > 0) {
          if (left.length < rec.sessions.length) await this.setSessions(rec, user, left);
          this.log.info('session.ended', { user, container: rec.id, session, sessions: left.length });
          return { container: rec.id, graceUntil: null, sessions: left.length, released: false };
        }
      }
      if (this.config.graceSeconds > 0) {
        rec.releasedAt ??= now;
        if (rec.sessions?.length) await this.setSessions(rec, user, []);
        else await this.persist();
        this.log.info('lease.released', { user, container: rec.id, heldMs: now - (rec.grantedAt ?? now), graceSeconds: this.config.graceSeconds });
        return { container: rec.id, graceUntil: new Date(rec.releasedAt + this.config.graceSeconds * 1000).toISOString(), sessions: 0, released: true };
      }
      this.log.info('lease.released', { user, container: rec.id, heldMs: now - (rec.grantedAt ?? now), graceSeconds: 0 });
      this.endLease(rec, 'released', false);
      await this.persist();
      this.builds.scheduleReset(rec);
      return { container: rec.id, graceUntil: null, sessions: 0, released: true };
    });
  }

  /** Keep exactly `sessions` on the lease: their keys in the container, the list on disk. */
  private async setSessions(rec: ContainerRecord, user: string, sessions: SessionRecord[]): Promise<void> {
    await this.containerLock.run(rec.id, async () => {
      if (!this.table.holds(rec, user)) return;
      rec.sessions = sessions;
      await Promise.all([this.persist(), this.driver.authorizeKey(rec.id, sessions.map((s) => s.key))]);
    });
  }

  // ---------------------------------------------------------------- placement (as the users' home)

  /** The hypervisor `user`'s lease was placed on, while the claim is fresh. */
  claimOf(user: string): string | undefined {
    const c = this.claims.get(user);
    if (!c) return undefined;
    if (claimExpired(c.since, this.clock.now(), this.config.claimSeconds)) {
      this.claims.delete(user);
      return undefined;
    }
    return c.hypervisor;
  }

  /**
   * As `user`'s home: send the user to `hypervisor` from now on (null: here), unless another
   * claim is in place that is not `replace` (then that one is the answer). A lease held here
   * refuses (E_HELD_HERE), unless `endLease`: a lease given elsewhere while this hypervisor
   * was down replaces it, so it ends now (with its sessions) and the container is reset.
   */
  claim(user: string, hypervisor: string | null, options: { replace?: string; endLease?: boolean } = {}): Promise<{ hypervisor: string | null }> {
    return this.userLock.run(user, async () => {
      const rec = this.table.leaseOf(user);
      if (rec && !options.endLease) throw new VzsbError('E_HELD_HERE', `user ${user} holds a lease on this hypervisor (${rec.id})`);
      if (rec) {
        await this.containerLock.run(rec.id, async () => {
          if (!this.table.holds(rec, user)) return;
          this.log.warn('lease.superseded', { user, container: rec.id, by: hypervisor });
          this.endLease(rec, 'moved');
        });
        this.builds.scheduleReset(rec);
      }
      const current = this.claimOf(user);
      if (current !== undefined && current !== hypervisor && current !== options.replace && !options.endLease) {
        return { hypervisor: current };
      }
      if (hypervisor === null) this.claims.delete(user);
      else this.claims.set(user, { hypervisor, since: this.clock.now() });
      await this.persist();
      this.log.info('lease.claim', { user, at: hypervisor, replaced: current ?? null });
      return { hypervisor };
    });
  }

  /** The lease of `user` that replaced one on a hypervisor that was down: that one has been ended. */
  settle(user: string): Promise<void> {
    return this.userLock.run(user, async () => {
      const rec = this.table.leaseOf(user);
      if (!rec || rec.displaced === undefined) return;
      rec.displaced = undefined;
      await this.persist();
    });
  }

  /** Leases given here while the user's previous holder was down, not settled yet (in /healthz). */
  displacedLeases(): { user: string; from: string }[] {
    const out: { user: string; from: string }[] = [];
    for (const rec of this.table.leasedByUser()) if (rec.displaced !== undefined && rec.state === 'leased' && rec.user) out.push({ user: rec.user, from: rec.displaced });
    return out;
  }

  private async grant(rec: ContainerRecord, user: string, publicKey: string, renewed: boolean, hit: boolean, started: number, options: LeaseOptions): Promise<Lease | undefined> {
    return this.containerLock.run(rec.id, async () => {
      if (!this.table.holds(rec, user)) return undefined;
      const now = this.clock.now();
      const others = (rec.sessions ?? []).filter((s) => s.id !== options.session);
      if (options.session !== undefined && options.maxSessions !== undefined && others.length >= options.maxSessions) {
        this.log.warn('lease.refused', { user, container: rec.id, code: 'E_TOO_MANY', sessions: others.length, max: options.maxSessions });
        throw new VzsbError('E_TOO_MANY', `user ${user} has ${others.length} sessions open (at most ${options.maxSessions})`);
      }
      rec.releasedAt = undefined;
      if (!renewed) {
        rec.grantedAt = now;
        rec.lastActiveAt = now;
        rec.loggedIn = false;
      }
      // A lease without a session (an older gateway) has exactly its last key, as before sessions.
      rec.sessions = options.session === undefined ? undefined : [...others, { id: options.session, key: publicKey, since: now }].slice(-SESSIONS_KEPT);
      if (options.displaced !== undefined) rec.displaced = options.displaced;
      const keys = rec.sessions ? rec.sessions.map((s) => s.key) : [publicKey];
      let hostKey: HostKey;
      if (renewed) {
        // A renewal never ends the lease, whatever fails: the container and its sessions stay.
        try {
          await Promise.all([this.persist(), this.driver.authorizeKey(rec.id, keys)]);
          hostKey = await this.hostKeyOf(rec.id);
        } catch (err) {
          this.log.error('lease.renew_failed', { user, container: rec.id, error: err });
          throw new VzsbError('E_RENEW_FAILED', `your sandbox ${rec.id} is kept, but it cannot take a new login just now; try again in a moment`, { cause: err });
        }
      } else {
        try {
          // All before the answer; in parallel because a crash between them is harmless either way:
          // a recorded lease keeps the container for this user, and a key put into a container the
          // file still calls clean is replaced by the next lease's key.
          await Promise.all([this.store.save(() => this.snapshot()), this.driver.authorizeKey(rec.id, keys), this.leaseRecords.write(rec)]);
          hostKey = await this.hostKeyOf(rec.id);
        } catch (err) {
          this.log.error('lease.failed', { user, container: rec.id, error: err, storage: isStorageError(err) });
          if (this.table.holds(rec, user) && isStorageError(err)) {
            // Nothing of the student's is in it yet: back to the pool as it was, kept.
            this.table.unassign(rec, this.clock.now());
            this.track(this.leaseRecords.write(rec));
            this.track(this.persist());
            this.observer.leaseRefused?.('E_STATE_UNWRITABLE');
            throw unwritable();
          }
          if (this.table.holds(rec, user)) {
            this.endLease(rec, 'lost', false);
            this.track(this.persist());
            this.builds.scheduleResetAfterLock(rec);
          }
          return undefined;
        }
      }
      if (!this.table.holds(rec, user)) return undefined;
      const ms = Math.round((performance.now() - started) * 10) / 10;
      this.observer.leaseGranted?.(hit, ms / 1000, renewed);
      this.log.info('lease.granted', { user, container: rec.id, ms, hit, renewed, sessions: rec.sessions?.length });
      if (!renewed) this.track(this.replenish());
      return {
        sessions: rec.sessions?.length ?? 1,
        container: rec.id,
        address: rec.address ?? '',
        hostKey: hostKey.publicKey,
        hostKeyFingerprint: hostKey.fingerprint,
        user,
        grantedAt: new Date(rec.grantedAt ?? now).toISOString(),
        ms,
        hit,
        renewed,
        ...expiry(rec.grantedAt ?? now, now, this.config.maxSessionSeconds),
      };
    });
  }

  private waitForClean(deadline: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, Math.max(0, deadline - performance.now()));
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.cleanWaiters.push(done);
    });
  }

  /** Move a leased container to dirty (the caller persists and schedules the reset). */
  private endLease(rec: ContainerRecord, reason: ReclaimReason, log = true): void {
    const now = this.clock.now();
    if (log) {
      this.log.info('lease.reclaimed', { user: rec.user, container: rec.id, reason, heldMs: now - (rec.grantedAt ?? now), idleMs: now - (rec.lastActiveAt ?? now) });
      this.observer.reclaimed?.(reason);
    }
    this.table.endLease(rec, now);
    // Best effort: a reset removes the record anyway; until then it says the lease ended.
    this.track(this.leaseRecords.write(rec).catch((err) => this.log.warn('lease.record_failed', { container: rec.id, error: err })));
  }

  // ---------------------------------------------------------------- building and reset (build-queue.ts)

  /** Build containers until `standby` are clean or being built, without exceeding max. */
  replenish(): Promise<void> {
    return this.builds.replenish();
  }

  /** Change the standby target (schedule); refills at once when it grows. */
  setStandby(n: number): void {
    this.builds.setStandby(n);
  }

  // ---------------------------------------------------------------- reclaim

  /**
   * One pass of the reclaim job: end leases whose grace expired, that sat idle (no ssh session
   * seen) past idleSeconds, were never used within loginSeconds, or passed maxSessionSeconds;
   * reset what is dirty, retry what is broken, refill to standby.
   */
  async reclaim(): Promise<ReclaimReport> {
    const report: ReclaimReport = { reclaimed: [], kept: 0, repaired: [] };
    const leased = [...this.table.values()].filter((r) => r.state === 'leased');
    const ended: ContainerRecord[] = [];
    let changed = false;
    await Promise.all(
      leased.map((rec) =>
        this.containerLock.run(rec.id, async () => {
          if (rec.state !== 'leased' || !this.table.has(rec)) return;
          const user = rec.user!;
          let sessions: number;
          try {
            sessions = await this.driver.sessionCount(rec.id);
          } catch (err) {
            this.log.warn('container.sessions_failed', { container: rec.id, user, error: err });
            sessions = 0;
          }
          const now = this.clock.now();
          if (sessions > 0) {
            rec.lastActiveAt = now;
            rec.loggedIn = true;
            changed = true;
          }
          if (await this.pruneSessions(rec, sessions, now)) changed = true;
          const reason = reclaimReason(rec, sessions, now, this.config);
          if (keptPastGrace(rec, reason, sessions, now, this.config)) {
            // Released by one terminal while another still has a session: the lease lives on.
            rec.releasedAt = undefined;
            this.log.info('lease.kept', { user, container: rec.id, sessions });
          }
          if (reason) {
            this.endLease(rec, reason);
            report.reclaimed.push({ user, container: rec.id, reason });
            ended.push(rec);
            changed = true;
          } else {
            report.kept++;
          }
        }),
      ),
    );
    for (const [user, c] of this.claims) {
      if (claimExpired(c.since, this.clock.now(), this.config.claimSeconds)) {
        this.claims.delete(user);
        changed = true;
      }
    }
    if (changed) await this.persist();
    for (const rec of ended) this.builds.scheduleReset(rec);
    for (const rec of [...this.table.values()]) {
      if (rec.state === 'dirty') this.builds.scheduleReset(rec);
      if (rec.state === 'broken' && (await this.builds.repair(rec))) report.repaired.push(rec.id);
    }
    await this.replenish();
    return report;
  }

  /**
   * Registered sessions beyond the live ssh sessions the container has, oldest first and only
   * those old enough to have connected, are sessions whose gateway never ended them (it died):
   * dropped, so they count against no limit and their keys go. Under the container's lock.
   */
  private async pruneSessions(rec: ContainerRecord, live: number, now: number): Promise<boolean> {
    const registered = rec.sessions ?? [];
    const drop = new Set(staleSessions(registered, live, now));
    if (drop.size === 0) return false;
    const kept = registered.filter((s) => !drop.has(s));
    try {
      await this.driver.authorizeKey(rec.id, kept.map((s) => s.key));
    } catch (err) {
      this.log.warn('session.prune_failed', { container: rec.id, user: rec.user, error: err });
      return false;
    }
    rec.sessions = kept;
    this.log.info('session.pruned', { user: rec.user, container: rec.id, dropped: drop.size, sessions: kept.length, live });
    return true;
  }

  // ---------------------------------------------------------------- admin resets

  /** Reset one container. A leased one with live sessions only with `force`; its lease ends. */
  async resetContainer(id: string, options: { force?: boolean; wait?: boolean } = {}): Promise<ResetReport> {
    const rec = this.table.get(id);
    if (!rec) throw new VzsbError('E_NOT_FOUND', `no container ${id} on this hypervisor`);
    const report = await this.resetMany([rec], options.force ?? false, options.wait ?? false);
    const skipped = report.skipped[0];
    if (skipped && skipped.reason.startsWith('in use')) {
      throw new VzsbError('E_IN_USE', `container ${id} is in use by ${skipped.user} (${skipped.reason}); pass force to reset it anyway`);
    }
    return report;
  }

  async resetUser(user: string, options: { force?: boolean; wait?: boolean } = {}): Promise<ResetReport> {
    const rec = this.table.leaseOf(user);
    if (!rec) throw new VzsbError('E_NO_LEASE', `user ${user} holds no lease`);
    return this.resetContainer(rec.id, options);
  }

  /** Reset every container; in-use ones (live ssh sessions) only with `force`. */
  async resetAll(options: { force?: boolean; wait?: boolean } = {}): Promise<ResetReport> {
    return this.resetMany([...this.table.values()], options.force ?? false, options.wait ?? false);
  }

  private async resetMany(recs: ContainerRecord[], force: boolean, wait: boolean): Promise<ResetReport> {
    const report: ResetReport = { reset: [], skipped: [], failed: [] };
    const scheduled: ContainerRecord[] = [];
    await Promise.all(
      recs.map((rec) =>
        this.containerLock.run(rec.id, async () => {
          if (!this.table.has(rec)) return;
          if (rec.state === 'building') {
            report.skipped.push({ container: rec.id, user: rec.reservedFor ?? null, reason: 'being built' });
            return;
          }
          if (rec.state === 'leased') {
            let sessions = 0;
            try {
              sessions = await this.driver.sessionCount(rec.id);
            } catch {
              sessions = 0;
            }
            if (sessions > 0 && !force) {
              report.skipped.push({ container: rec.id, user: rec.user ?? null, reason: `in use: ${sessions} ssh session(s)` });
              return;
            }
            this.endLease(rec, 'reset');
          } else {
            this.table.move(rec, 'dirty', this.clock.now());
          }
          scheduled.push(rec);
          report.reset.push(rec.id);
        }),
      ),
    );
    await this.persist();
    const done = scheduled.map((rec) => this.builds.scheduleReset(rec).then((ok) => ok || report.failed.push(rec.id)));
    if (wait) await Promise.all(done);
    this.log.info('pool.reset', { reset: report.reset.length, skipped: report.skipped.length, force });
    return report;
  }

  // ---------------------------------------------------------------- views

  capacity(): Capacity {
    return { ...this.table.counts(), max: this.config.max, standby: this.builds.standby };
  }

  containers(): ContainerView[] {
    return [...this.table.values()].sort((a, b) => (a.id < b.id ? -1 : 1)).map(viewOf);
  }

  /** The container leased to (or being built for) a user, if any: two map lookups, no scan. */
  containerOf(user: string): ContainerView | null {
    const leased = this.table.leaseOf(user);
    if (leased) return viewOf(leased);
    const r = this.table.reservationOf(user);
    return r ? viewOf(r) : null;
  }

  leases(): LeaseView[] {
    return [...this.table.values()]
      .filter((r) => r.state === 'leased' && r.user)
      .sort((a, b) => (a.user! < b.user! ? -1 : 1))
      .map((r) => ({
        user: r.user!,
        container: r.id,
        address: r.address ?? null,
        grantedAt: new Date(r.grantedAt ?? r.since).toISOString(),
        lastActiveAt: r.lastActiveAt === undefined ? null : new Date(r.lastActiveAt).toISOString(),
        loggedIn: r.loggedIn ?? false,
        releasedAt: r.releasedAt === undefined ? null : new Date(r.releasedAt).toISOString(),
      }));
  }

  // ---------------------------------------------------------------- lifecycle

  /** Resolves when no background work (resets, builds, saves) is left. */
  async settled(): Promise<void> {
    while (this.background.size > 0) await Promise.allSettled([...this.background]);
  }

  /** Refuse new leases and builds, then wait for running work. */
  async stop(): Promise<void> {
    this.stopping = true;
    await this.settled();
  }

  // ---------------------------------------------------------------- internals

  private async hostKeyOf(id: string): Promise<HostKey> {
    let key = this.hostKeys.get(id);
    if (!key) {
      key = await this.driver.hostKey(id);
      this.hostKeys.set(id, key);
    }
    return key;
  }

  /**
   * Save the state; never rejects. A failed save stays in memory and the store writes it once
   * the disk allows (LeaseStore retries); meanwhile new leases are refused (see `lease`).
   */
  private persist(): Promise<boolean> {
    return this.store.save(() => this.snapshot()).then(
      () => true,
      () => false,
    );
  }

  /** Whether the state can be written now, and why not. */
  storeHealth(): ReturnType<LeaseStore['health']> {
    return this.store.health();
  }

  /** Try a write in the state directory now (health checks); the error, if it failed. */
  probeStore(): Promise<string | undefined> {
    return this.store.probe();
  }

  snapshot(): StoredState {
    // JSON drops the undefined fields; the reservation of a miss is not state (a build is redone after a crash).
    const containers: StoredRecord[] = [...this.table.values()].map(({ reservedFor: _r, ...rest }) => rest);
    const state: StoredState = { version: 1, savedAt: this.clock.now(), containers };
    if (this.claims.size > 0) state.claims = [...this.claims].map(([user, c]) => ({ user, hypervisor: c.hypervisor, since: c.since }));
    return state;
  }

  private track(p: Promise<unknown>): void {
    const guarded = p.catch((err) => this.log.error('pool.background_failed', { error: err }));
    this.background.add(guarded);
    void guarded.finally(() => this.background.delete(guarded));
  }
}

function unwritable(): VzsbError {
  return new VzsbError('E_STATE_UNWRITABLE', 'this hypervisor cannot save its state just now, so it gives no new sandboxes; existing ones go on');
}

function viewOf(r: ContainerRecord): ContainerView {
  return { id: r.id, state: r.state, user: r.user ?? r.reservedFor ?? null, since: new Date(r.since).toISOString(), address: r.address ?? null };
}
