import type { ContainerInfo } from '../drivers/types.js';
import type { ContainerRecord } from './container-table.js';
import type { LeaseRecord } from './lease-records.js';
import type { ContainerState, StoredRecord, StoredState } from './lease-store.js';
import { claimExpired } from './reclaim-policy.js';

/**
 * What the pool's start decides from what it finds: the stored state (state file, or the
 * previous one), the driver's list, and the containers' own lease records. Pure: the pool
 * applies the plan (puts the records into its table, destroys, starts, resets, logs).
 * The runtime is the truth for what exists, the state for who holds what; a container's own
 * lease record written after the state was saved is the newer word for that container.
 */

/** What becomes of one container (or stored record). */
export type ReconcileAction =
  /** Clean and running: stays clean. */
  | 'keep'
  /** Leased and running: the lease goes on. */
  | 'keep-lease'
  /** Leased but stopped (a host reboot): started again, or (when that fails) the lease is lost and it is reset. */
  | 'start'
  /** Building (died half-made), dirty, broken, clean but stopped, or leased to nobody: reset from the base. */
  | 'rebuild'
  /** A container of ours without any record, kept: reset into the pool. */
  | 'adopt'
  /** A container without any record: destroyed. */
  | 'destroy'
  /** A record whose container is gone: dropped (a lease it held is lost). */
  | 'drop';

export interface OrphanPolicy {
  /** config.orphans */
  orphans: 'destroy' | 'adopt';
  /** The state file was damaged: nobody can vouch for a container without a record, so it is reset, never destroyed. */
  damaged: boolean;
  /** The id has our prefix and a number (a container the pool could have made). */
  ours: boolean;
}

/** The decision for one container id: its (merged) record, if any, and the driver's view of it, if listed. */
export function decide(stored: StoredRecord | undefined, live: Pick<ContainerInfo, 'running'> | undefined, policy: OrphanPolicy): ReconcileAction {
  if (stored === undefined) {
    if (live === undefined) throw new Error('decide: neither a record nor a container');
    return (policy.orphans === 'adopt' || policy.damaged) && policy.ours ? 'adopt' : 'destroy';
  }
  if (live === undefined) return 'drop';
  if (stored.state === 'leased' && stored.user) return live.running ? 'keep-lease' : 'start';
  if (stored.state === 'clean' && live.running) return 'keep';
  return 'rebuild';
}

export interface ReconcileInput {
  /** The state loaded (undefined: none). */
  saved: StoredState | undefined;
  damaged: boolean;
  /** driver.list(), in its order. */
  live: readonly ContainerInfo[];
  /** The listed containers' valid lease records. */
  leaseRecords: ReadonlyMap<string, LeaseRecord>;
  now: number;
  orphans: 'destroy' | 'adopt';
  claimSeconds: number;
  /** Whether an id is one the pool could have made. */
  ours(id: string): boolean;
}

export interface ReconcileEntry {
  /** The record to put into the table, in the state it enters with. */
  record: ContainerRecord;
  action: 'keep' | 'keep-lease' | 'start' | 'rebuild' | 'adopt';
}

export interface ReconcilePlan {
  /** In table order: the stored records first (state order, then those only a lease record knows), then the adopted orphans. */
  entries: ReconcileEntry[];
  /** Orphans to destroy, in the driver's order. */
  destroy: string[];
  /** Records whose container is gone. */
  dropped: StoredRecord[];
  /** Containers whose record came from their own lease record. */
  fromRecords: { id: string; record: LeaseRecord; stateFile: ContainerState }[];
  /** The claims still fresh. */
  claims: { user: string; hypervisor: string; since: number }[];
}

/** The record a container's newer lease record makes of what the state said (or of nothing: dirty). */
export function fromLeaseRecord(base: StoredRecord, r: LeaseRecord, now: number): StoredRecord {
  if (r.state === 'released') return { id: base.id, state: 'dirty', since: now, address: base.address, lastUser: r.user };
  return { id: base.id, state: 'leased', since: r.at, address: base.address, user: r.user, grantedAt: r.grantedAt ?? r.at, lastActiveAt: r.at, loggedIn: false };
}

export function planReconcile(input: ReconcileInput): ReconcilePlan {
  const { saved, now } = input;
  const plan: ReconcilePlan = { entries: [], destroy: [], dropped: [], fromRecords: [], claims: [] };
  for (const c of saved?.claims ?? []) {
    if (!claimExpired(c.since, now, input.claimSeconds)) plan.claims.push({ user: c.user, hypervisor: c.hypervisor, since: c.since });
  }
  const live = new Map(input.live.map((c) => [c.id, c]));
  const newer = (id: string) => {
    const r = input.leaseRecords.get(id);
    return r && r.at > (saved?.savedAt ?? -Infinity) ? r : undefined;
  };
  const fromRecord = (base: StoredRecord, r: LeaseRecord): StoredRecord => {
    plan.fromRecords.push({ id: base.id, record: r, stateFile: base.state });
    return fromLeaseRecord(base, r, now);
  };
  const records = (saved?.containers ?? []).map((rec) => {
    const r = live.has(rec.id) ? newer(rec.id) : undefined;
    return r ? fromRecord(rec, r) : rec;
  });
  for (const info of live.values()) {
    if (records.some((rec) => rec.id === info.id)) continue;
    const r = newer(info.id);
    if (r) records.push(fromRecord({ id: info.id, state: 'dirty', since: now, address: info.address }, r));
  }
  for (const rec of records) {
    const info = live.get(rec.id);
    live.delete(rec.id);
    const action = decide(rec, info, { orphans: input.orphans, damaged: input.damaged, ours: input.ours(rec.id) });
    if (action === 'drop' || info === undefined) {
      plan.dropped.push(rec);
      continue;
    }
    const record: ContainerRecord = { ...rec, address: info.address ?? rec.address };
    if (action === 'rebuild') {
      record.state = 'dirty';
      record.since = now;
    }
    plan.entries.push({ record, action: action as ReconcileEntry['action'] });
  }
  for (const info of live.values()) {
    if (decide(undefined, info, { orphans: input.orphans, damaged: input.damaged, ours: input.ours(info.id) }) === 'adopt') {
      plan.entries.push({ record: { id: info.id, state: 'dirty', since: now, address: info.address }, action: 'adopt' });
    } else {
      plan.destroy.push(info.id);
    }
  }
  return plan;
}
