import type { ContainerState, StoredRecord } from './lease-store.js';

/**
 * The pool's containers: one record per container id, the user -> lease and user -> reservation
 * indexes, and the only way a record changes state. Every change (a record put in, moved to
 * another state, taken out) is checked against TRANSITIONS; one that is not there is a bug and
 * is refused with an Error before anything changed. The table does no I/O and never awaits, so
 * a check and the change after it are atomic (the pool's invariants rely on that).
 */
export interface ContainerRecord extends StoredRecord {
  /** A build started for this user's lease (a pool miss): no one else takes it. */
  reservedFor?: string;
}

/** One login session of a lease, with its one-time key. */
export type SessionRecord = NonNullable<StoredRecord['sessions']>[number];

/** A record's place: one of the stored states, or not in the table. */
export type Place = ContainerState | 'absent';

export interface Transition {
  from: Place;
  to: Place;
  /** When the pool makes it. */
  why: string;
}

/** Every state change the pool makes. */
export const TRANSITIONS: readonly Transition[] = [
  { from: 'absent', to: 'building', why: 'the lowest free number is reserved for a build (a refill, or a pool miss for one user)' },
  { from: 'absent', to: 'clean', why: 'start: the state file says clean and the container runs' },
  { from: 'absent', to: 'leased', why: 'start: a lease kept from the state file or from the container\'s own lease record' },
  { from: 'absent', to: 'dirty', why: 'start: a container to rebuild (building, dirty, broken, or clean but stopped), or an orphan adopted' },
  { from: 'building', to: 'building', why: 'a reserved number\'s build gets its build slot (since restarts)' },
  { from: 'building', to: 'clean', why: 'the build is done: created, started, host key read' },
  { from: 'building', to: 'broken', why: 'the build failed' },
  { from: 'clean', to: 'leased', why: 'a clean container (or the one built for this user) is taken for a lease' },
  { from: 'clean', to: 'dirty', why: 'an admin reset' },
  { from: 'leased', to: 'clean', why: 'a lease never answered (its state could not be written) goes back untouched' },
  { from: 'leased', to: 'dirty', why: 'the lease ended: released, reclaimed, reset by an admin, lost, or moved elsewhere' },
  { from: 'dirty', to: 'building', why: 'its reset starts (destroy + create)' },
  { from: 'dirty', to: 'dirty', why: 'an admin reset of a container already waiting for one (since restarts)' },
  { from: 'broken', to: 'dirty', why: 'an admin reset' },
  { from: 'broken', to: 'absent', why: 'destroyed (repair, or what a failed build left): its number is free again' },
];

const allowed = new Set(TRANSITIONS.map((t) => `${t.from}>${t.to}`));

export function isAllowedTransition(from: Place, to: Place): boolean {
  return allowed.has(`${from}>${to}`);
}

/** Throws (a bug in the caller) unless `from -> to` is in TRANSITIONS. */
export function checkTransition(id: string, from: Place, to: Place): void {
  if (!allowed.has(`${from}>${to}`)) throw new Error(`container ${id}: no transition ${from} -> ${to}`);
}

export type StateCounts = Record<ContainerState, number>;

const ID_DIGITS = 4;

export class ContainerTable {
  private readonly records = new Map<string, ContainerRecord>();
  /** user -> their leased record; checked against the record on every read (holds()). */
  private readonly byUser = new Map<string, ContainerRecord>();
  /** user -> the record being built for them (a pool miss). */
  private readonly reservedBy = new Map<string, ContainerRecord>();

  /**
   * @param prefix container id prefix, as the driver lists them
   * @param max at most this many records (reserve() refuses beyond)
   * @param onEnter called after every change, with the state entered
   */
  constructor(
    private readonly prefix: string,
    private readonly max: number,
    private readonly onEnter: (rec: ContainerRecord, to: Place) => void = () => {},
  ) {}

  // ---------------------------------------------------------------- the one way to change state

  private change(rec: ContainerRecord, from: Place, to: Place, now: number): void {
    checkTransition(rec.id, from, to);
    if (to === 'absent') {
      this.records.delete(rec.id);
    } else {
      rec.state = to;
      rec.since = now;
      if (from === 'absent') this.records.set(rec.id, rec);
    }
    this.onEnter(rec, to);
  }

  /** Put a record into the table in its own state (start, reserve). */
  insert(rec: ContainerRecord): void {
    if (this.records.has(rec.id)) throw new Error(`container ${rec.id}: already in the table`);
    this.change(rec, 'absent', rec.state, rec.since);
    if (rec.state === 'leased' && rec.user) this.byUser.set(rec.user, rec);
  }

  /** Move a record of the table to `state` (since = now). */
  move(rec: ContainerRecord, state: ContainerState, now: number): void {
    if (this.records.get(rec.id) !== rec) throw new Error(`container ${rec.id}: not this record in the table`);
    this.change(rec, rec.state, state, now);
  }

  /** Take a record out; false (nothing changed) when the table holds another record (or none) under its id. */
  remove(rec: ContainerRecord): boolean {
    if (this.records.get(rec.id) !== rec) return false;
    this.change(rec, rec.state, 'absent', rec.since);
    return true;
  }

  // ---------------------------------------------------------------- reading

  get(id: string): ContainerRecord | undefined {
    return this.records.get(id);
  }

  /** Whether `rec` is the table's record under its id. */
  has(rec: ContainerRecord): boolean {
    return this.records.get(rec.id) === rec;
  }

  get size(): number {
    return this.records.size;
  }

  values(): IterableIterator<ContainerRecord> {
    return this.records.values();
  }

  counts(): StateCounts {
    const c: StateCounts = { clean: 0, leased: 0, building: 0, dirty: 0, broken: 0 };
    for (const r of this.records.values()) c[r.state]++;
    return c;
  }

  /** Clean, building or dirty and promised to nobody: counts toward standby. */
  unreserved(): number {
    let n = 0;
    for (const r of this.records.values()) {
      if ((r.state === 'clean' || r.state === 'building' || r.state === 'dirty') && r.reservedFor === undefined) n++;
    }
    return n;
  }

  /** A container not promised to anyone will turn clean without a new build. */
  cleanSoon(): boolean {
    for (const r of this.records.values()) {
      if (r.state === 'dirty' || (r.state === 'building' && r.reservedFor === undefined)) return true;
    }
    return false;
  }

  // ---------------------------------------------------------------- leases

  holds(rec: ContainerRecord, user: string): boolean {
    return this.records.get(rec.id) === rec && rec.state === 'leased' && rec.user === user;
  }

  /** The record leased to `user`: one map lookup, checked. */
  leaseOf(user: string): ContainerRecord | undefined {
    const r = this.byUser.get(user);
    if (r && this.holds(r, user)) return r;
    if (r) this.byUser.delete(user);
    return undefined;
  }

  /** Leased records, through the user index (may hold stale entries: check the state). */
  leasedByUser(): IterableIterator<ContainerRecord> {
    return this.byUser.values();
  }

  /** The record being built for `user`, if still so. */
  reservationOf(user: string): ContainerRecord | undefined {
    const r = this.reservedBy.get(user);
    if (r && this.records.get(r.id) === r && r.state === 'building' && r.reservedFor === user) return r;
    if (r) this.reservedBy.delete(user);
    return undefined;
  }

  /** Atomically take the lowest-numbered clean container for `user`. */
  takeClean(user: string, now: number): ContainerRecord | undefined {
    let best: ContainerRecord | undefined;
    for (const r of this.records.values()) {
      if (r.state !== 'clean' || (r.reservedFor !== undefined && r.reservedFor !== user)) continue;
      if (!best || r.id < best.id) best = r;
    }
    if (best) {
      best.reservedFor = undefined;
      this.assign(best, user, now);
    }
    return best;
  }

  /** Lease a clean record to `user`. */
  assign(rec: ContainerRecord, user: string, now: number): void {
    this.move(rec, 'leased', now);
    rec.user = user;
    this.byUser.set(user, rec);
    if (this.reservedBy.get(user) === rec) this.reservedBy.delete(user);
  }

  /** Drop everything a lease put on a container record (and the user's index entry). */
  clearLease(rec: ContainerRecord): void {
    if (rec.user !== undefined && this.byUser.get(rec.user) === rec) this.byUser.delete(rec.user);
    rec.user = undefined;
    rec.sessions = undefined;
    rec.displaced = undefined;
    rec.grantedAt = undefined;
    rec.lastActiveAt = undefined;
    rec.loggedIn = undefined;
    rec.releasedAt = undefined;
  }

  /** Undo `assign` of a lease that was never answered. */
  unassign(rec: ContainerRecord, now: number): void {
    this.clearLease(rec);
    this.move(rec, 'clean', now);
  }

  /** End a lease: the record goes dirty, remembering its last user. */
  endLease(rec: ContainerRecord, now: number): void {
    rec.lastUser = rec.user;
    this.clearLease(rec);
    this.move(rec, 'dirty', now);
  }

  // ---------------------------------------------------------------- numbers

  /** Reserve the lowest free number for a new container (for `user`: a miss), if below max. */
  reserve(now: number, user?: string): ContainerRecord | undefined {
    if (this.records.size >= this.max) return undefined;
    const used = new Set([...this.records.keys()].map((id) => this.numberOf(id)));
    let n = 1;
    while (used.has(n)) n++;
    const rec: ContainerRecord = { id: this.prefix + String(n).padStart(ID_DIGITS, '0'), state: 'building', since: now };
    if (user !== undefined) {
      rec.reservedFor = user;
      this.reservedBy.set(user, rec);
    }
    this.insert(rec);
    return rec;
  }

  /** The number in a container id of ours, or undefined (not ours). */
  numberOf(id: string): number | undefined {
    if (!id.startsWith(this.prefix)) return undefined;
    const rest = id.slice(this.prefix.length);
    return /^\d+$/.test(rest) ? Number(rest) : undefined;
  }
}
