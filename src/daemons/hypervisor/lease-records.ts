import type { ContainerDriver } from '../drivers/types.js';
import type { ContainerRecord } from './container-table.js';

/**
 * Each container's own lease record on the host (driver.writeLeaseRecord), beside the state
 * file: at start, a record newer than the state file decides its container (docs/hypervisor.md,
 * "Crash safety").
 */
export interface LeaseRecord {
  version: 1;
  container: string;
  state: 'leased' | 'released';
  user?: string;
  grantedAt?: number;
  /** When it was written (epoch ms, the pool's clock). */
  at: number;
}

export function parseLeaseRecord(text: string | undefined, id: string): LeaseRecord | undefined {
  if (text === undefined) return undefined;
  try {
    const r = JSON.parse(text) as Partial<LeaseRecord>;
    if (r.version !== 1 || r.container !== id || typeof r.at !== 'number') return undefined;
    if (r.state === 'leased' && typeof r.user === 'string' && r.user !== '') return r as LeaseRecord;
    if (r.state === 'released') return r as LeaseRecord;
  } catch {
    // a torn record is no record
  }
  return undefined;
}

/** Reads and writes the containers' lease records; the writes for one container in order. */
export class LeaseRecords {
  /** Lease record writes per container, in order. */
  private readonly writes = new Map<string, Promise<void>>();

  constructor(
    private readonly driver: ContainerDriver,
    private readonly now: () => number,
  ) {}

  /**
   * Write the container's own lease record (what `rec` says now), after any earlier write for
   * it. Rejects on failure; callers that do not need it durable track it instead.
   */
  write(rec: ContainerRecord): Promise<void> {
    const write = this.driver.writeLeaseRecord?.bind(this.driver);
    if (!write) return Promise.resolve();
    const record: LeaseRecord =
      rec.state === 'leased' && rec.user
        ? { version: 1, container: rec.id, state: 'leased', user: rec.user, grantedAt: rec.grantedAt, at: this.now() }
        : { version: 1, container: rec.id, state: 'released', user: rec.lastUser, at: this.now() };
    const text = JSON.stringify(record) + '\n';
    const prev = this.writes.get(rec.id) ?? Promise.resolve();
    const p = prev.catch(() => {}).then(() => write(rec.id, text));
    const kept = p.catch(() => {});
    this.writes.set(rec.id, kept);
    void kept.then(() => {
      if (this.writes.get(rec.id) === kept) this.writes.delete(rec.id);
    });
    return p;
  }

  /** The write still running for `id`, if any (settles, never rejects). */
  pending(id: string): Promise<void> | undefined {
    return this.writes.get(id);
  }

  /** The valid records of `ids`, 64 reads at a time; an unreadable one is no record. */
  async readAll(ids: string[]): Promise<Map<string, LeaseRecord>> {
    const out = new Map<string, LeaseRecord>();
    const read = this.driver.readLeaseRecord?.bind(this.driver);
    if (!read) return out;
    for (let i = 0; i < ids.length; i += 64) {
      await Promise.all(
        ids.slice(i, i + 64).map(async (id) => {
          const r = parseLeaseRecord(await read(id).catch(() => undefined), id);
          if (r) out.set(id, r);
        }),
      );
    }
    return out;
  }
}
