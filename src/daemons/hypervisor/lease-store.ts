import { link, mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { parseInput } from '../../common/validate.js';

/**
 * The pool's durable state: one JSON file, replaced atomically (write a temporary file, fsync,
 * rename over the old one, fsync the directory), so after a crash it holds either the old or
 * the new state, never a torn one. Saves are coalesced: callers that ask while a write is in
 * flight share the next write, which snapshots the state when it starts. The file it replaces
 * is kept as state.prev.json (the last good state), for when the current one is damaged by
 * something outside the daemon. A failed write is retried in the background until the disk
 * takes it again; `health()` says whether the state is writable now.
 */
export const containerStates = ['building', 'clean', 'leased', 'dirty', 'broken'] as const;
export type ContainerState = (typeof containerStates)[number];

const recordSchema = z.strictObject({
  id: z.string().min(1),
  state: z.enum(containerStates),
  since: z.number(),
  address: z.string().optional(),
  user: z.string().optional(),
  grantedAt: z.number().optional(),
  lastActiveAt: z.number().optional(),
  loggedIn: z.boolean().optional(),
  releasedAt: z.number().optional(),
  lastUser: z.string().optional(),
  error: z.string().optional(),
  /** The lease's live login sessions, each with its one-time key (the container accepts these). */
  sessions: z.array(z.strictObject({ id: z.string(), key: z.string(), since: z.number() })).optional(),
  /** Granted while the user's lease on this hypervisor (its name) could not be reached. */
  displaced: z.string().optional(),
});
export type StoredRecord = z.infer<typeof recordSchema>;

const stateSchema = z.strictObject({
  version: z.literal(1),
  savedAt: z.number(),
  containers: z.array(recordSchema),
  /** As the users' home: users whose lease lives on another hypervisor, and which. */
  claims: z.array(z.strictObject({ user: z.string(), hypervisor: z.string(), since: z.number() })).optional(),
});
export type StoredState = z.infer<typeof stateSchema>;

/** Whether the state can be written now; while it cannot, the last change waits in memory. */
export interface StoreHealth {
  writable: boolean;
  /** The last write error while not writable. */
  error?: string;
  /** When writes started failing (epoch ms). */
  failingSince?: number;
  /** A change is in memory only, waiting to be written. */
  pending: boolean;
}

/** Where `loadWithFallback` found the state, and what was wrong with the rest. */
export interface LoadedState {
  state: StoredState | undefined;
  source: 'current' | 'previous' | 'none';
  /** Unreadable or invalid files, in the order tried (empty when the current file was good or never existed). */
  problems: string[];
  /** The current file existed but could not be used, or was gone while a previous one remained. */
  damaged: boolean;
}

export interface LeaseStoreOptions {
  /** First retry of a failed write after this long; doubles up to `maxRetryMs`. Default 500 ms. */
  retryMs?: number;
  maxRetryMs?: number;
  /** Called when a write succeeds after writes had failed. */
  onRecovered?: () => void;
  /** Called when a write fails while writes had succeeded. */
  onFailing?: (error: string) => void;
  /** Runs before every write and probe; a throw is that write's failure (unit tests inject disk errors here). */
  beforeWrite?: () => void;
}

export class LeaseStore {
  readonly path: string;
  /** The last good state before the current one. */
  readonly previousPath: string;
  private readonly probePath: string;
  /** Where a current file that could not be read is moved. */
  readonly damagedPath: string;
  private writing: Promise<void> = Promise.resolve();
  private next: Promise<void> | undefined;
  /** Completed writes (tests and metrics). */
  writes = 0;
  private closed = false;
  private failure: { error: string; since: number } | undefined;
  private lastSnapshot: (() => StoredState) | undefined;
  private pending = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private retryDelay: number;
  /** The current file is one this store wrote or read intact: only then may it become the previous one. */
  private currentGood = false;
  private tmpSeq = 0;
  private readonly options: LeaseStoreOptions;
  private readonly listeners: Required<Pick<LeaseStoreOptions, 'onRecovered' | 'onFailing'>>[] = [];

  constructor(stateDir: string, options: LeaseStoreOptions = {}) {
    this.path = join(stateDir, 'state.json');
    this.previousPath = join(stateDir, 'state.prev.json');
    this.probePath = join(stateDir, '.write-probe');
    this.damagedPath = join(stateDir, 'state.damaged.json');
    this.options = options;
    this.retryDelay = options.retryMs ?? 500;
  }

  /** Be told when writes start failing and when they work again. */
  watch(listener: { onRecovered: () => void; onFailing: (error: string) => void }): void {
    this.listeners.push(listener);
  }

  health(): StoreHealth {
    return this.failure
      ? { writable: false, error: this.failure.error, failingSince: this.failure.since, pending: this.pending }
      : { writable: true, pending: this.pending };
  }

  get writable(): boolean {
    return this.failure === undefined;
  }

  /** The saved state, or undefined when none was ever saved. A corrupt file is an error naming the field. */
  async load(): Promise<StoredState | undefined> {
    const state = await readState(this.path);
    this.currentGood = state !== undefined;
    return state;
  }

  /**
   * The current state file, or the previous one when the current is unreadable, invalid or
   * gone; never throws for a damaged file (the caller rebuilds from the containers' records).
   */
  async loadWithFallback(): Promise<LoadedState> {
    const problems: string[] = [];
    let currentMissing = false;
    try {
      const state = await readState(this.path);
      if (state) {
        this.currentGood = true;
        return { state, source: 'current', problems, damaged: false };
      }
      currentMissing = true;
    } catch (err) {
      problems.push((err as Error).message);
      // Kept for the operator; the next save writes a new current file.
      await rename(this.path, this.damagedPath).catch(() => {});
    }
    this.currentGood = false;
    try {
      const state = await readState(this.previousPath);
      if (state) return { state, source: 'previous', problems, damaged: true };
    } catch (err) {
      problems.push((err as Error).message);
    }
    return { state: undefined, source: 'none', problems, damaged: !currentMissing || problems.length > 0 };
  }

  /**
   * Durably save what `snapshot` returns when the write starts; resolves once it is on disk.
   * A failed write rejects, and is retried in the background (with the newest snapshot) until
   * one succeeds: the state in memory reaches the disk once the disk allows.
   */
  save(snapshot: () => StoredState): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.path));
    this.lastSnapshot = snapshot;
    this.pending = true;
    if (this.next) return this.next;
    const next = this.writing.then(
      () => this.startWrite(snapshot),
      () => this.startWrite(snapshot),
    );
    this.next = next;
    return next;
  }

  /**
   * Check that the directory takes a write now (a small file written, fsynced and removed).
   * Marks the store failing (and retrying) when it does not; resolves to the error, if any.
   */
  async probe(): Promise<string | undefined> {
    if (this.closed) return undefined;
    try {
      this.options.beforeWrite?.();
      const fh = await open(this.probePath, 'w', 0o600);
      try {
        await fh.writeFile(`${process.pid}\n`, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      await unlink(this.probePath);
      if (this.failure && !this.pending) this.recovered();
      return undefined;
    } catch (err) {
      const message = (err as Error).message;
      this.failed(message);
      return message;
    }
  }

  /** Settles when no write is queued or running. */
  async flushed(): Promise<void> {
    while (this.next) await this.next.catch(() => {});
    await this.writing.catch(() => {});
  }

  /** Refuse every later save (E_STATE_CLOSED); writes already started finish (see `flushed`). */
  close(): void {
    this.closed = true;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
  }

  private startWrite(snapshot: () => StoredState): Promise<void> {
    this.next = undefined;
    if (this.closed) return Promise.reject(closedError(this.path));
    // Whatever was asked for up to now is in this snapshot.
    const latest = this.lastSnapshot ?? snapshot;
    this.pending = false;
    this.writing = this.writeAtomically(JSON.stringify(latest(), null, 1) + '\n').then(
      () => {
        if (this.failure) this.recovered();
      },
      (err: unknown) => {
        this.pending = true;
        this.failed((err as Error).message);
        throw new VzsbError('E_STATE_UNWRITABLE', `cannot write ${this.path}: ${(err as Error).message}`, { cause: err });
      },
    );
    return this.writing;
  }

  private failed(message: string): void {
    const first = this.failure === undefined;
    this.failure = { error: message, since: this.failure?.since ?? Date.now() };
    if (first) {
      this.retryDelay = this.options.retryMs ?? 500;
      this.options.onFailing?.(message);
      for (const l of this.listeners) l.onFailing(message);
    }
    this.scheduleRetry();
  }

  private recovered(): void {
    this.failure = undefined;
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    this.options.onRecovered?.();
    for (const l of this.listeners) l.onRecovered();
  }

  private scheduleRetry(): void {
    if (this.closed || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(delay * 2, this.options.maxRetryMs ?? 5000);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = undefined;
      if (this.closed) return;
      if (this.pending && this.lastSnapshot) void this.save(this.lastSnapshot).catch(() => {});
      else void this.probe();
    }, delay);
    this.retryTimer.unref();
  }

  private async writeAtomically(text: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}-${this.tmpSeq++}`;
    this.options.beforeWrite?.();
    try {
      const fh = await open(tmp, 'w', 0o600);
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      // The current file becomes the previous one (a hard link renamed into place: no moment
      // without a current file), unless it is one we never read intact.
      if (this.currentGood) {
        const prevTmp = `${this.previousPath}.tmp-${process.pid}`;
        await unlink(prevTmp).catch(() => {});
        try {
          await link(this.path, prevTmp);
          await rename(prevTmp, this.previousPath);
        } catch (err) {
          await unlink(prevTmp).catch(() => {});
          if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
        }
      }
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    this.currentGood = true;
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.writes++;
  }
}

async function readState(path: string): Promise<StoredState | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new VzsbError('E_STATE', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (err) {
    throw new VzsbError('E_STATE', `${path}: not valid JSON (${(err as Error).message})`, { cause: err });
  }
  return parseInput(stateSchema, data, path);
}

function closedError(path: string): VzsbError {
  return new VzsbError('E_STATE_CLOSED', `${path}: the state store is closed`);
}
