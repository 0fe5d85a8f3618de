import { mkdir, open, readFile, rename, unlink } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { parseInput } from '../../common/validate.js';

/**
 * The pool's durable state: one JSON file, replaced atomically (write a temporary file, fsync,
 * rename over the old one, fsync the directory), so after a crash it holds either the old or
 * the new state, never a torn one. Saves are coalesced: callers that ask while a write is in
 * flight share the next write, which snapshots the state when it starts.
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
});
export type StoredRecord = z.infer<typeof recordSchema>;

const stateSchema = z.strictObject({
  version: z.literal(1),
  savedAt: z.number(),
  containers: z.array(recordSchema),
});
export type StoredState = z.infer<typeof stateSchema>;

export class LeaseStore {
  readonly path: string;
  private writing: Promise<void> = Promise.resolve();
  private next: Promise<void> | undefined;
  /** Completed writes (tests and metrics). */
  writes = 0;
  private closed = false;

  constructor(stateDir: string) {
    this.path = join(stateDir, 'state.json');
  }

  /** The saved state, or undefined when none was ever saved. A corrupt file is an error naming the field. */
  async load(): Promise<StoredState | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw new VzsbError('E_STATE', `cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch (err) {
      throw new VzsbError('E_STATE', `${this.path}: not valid JSON (${(err as Error).message})`, { cause: err });
    }
    return parseInput(stateSchema, data, this.path);
  }

  /** Durably save what `snapshot` returns when the write starts; resolves once it is on disk. */
  save(snapshot: () => StoredState): Promise<void> {
    if (this.closed) return Promise.reject(closedError(this.path));
    if (this.next) return this.next;
    const next = this.writing.then(
      () => this.startWrite(snapshot),
      () => this.startWrite(snapshot),
    );
    this.next = next;
    return next;
  }

  /** Settles when no write is queued or running. */
  async flushed(): Promise<void> {
    while (this.next) await this.next.catch(() => {});
    await this.writing.catch(() => {});
  }

  /** Refuse every later save (E_STATE_CLOSED); writes already started finish (see `flushed`). */
  close(): void {
    this.closed = true;
  }

  private startWrite(snapshot: () => StoredState): Promise<void> {
    this.next = undefined;
    if (this.closed) return Promise.reject(closedError(this.path));
    this.writing = this.writeAtomically(JSON.stringify(snapshot(), null, 1) + '\n');
    return this.writing;
  }

  private async writeAtomically(text: string): Promise<void> {
    const dir = dirname(this.path);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const tmp = `${this.path}.tmp-${process.pid}`;
    const fh = await open(tmp, 'w', 0o600);
    try {
      await fh.writeFile(text, 'utf8');
      await fh.sync();
    } finally {
      await fh.close();
    }
    try {
      await rename(tmp, this.path);
    } catch (err) {
      await unlink(tmp).catch(() => {});
      throw err;
    }
    const dh = await open(dir, 'r');
    try {
      await dh.sync();
    } finally {
      await dh.close();
    }
    this.writes++;
  }
}

function closedError(path: string): VzsbError {
  return new VzsbError('E_STATE_CLOSED', `${path}: the state store is closed`);
}
