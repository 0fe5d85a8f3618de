import { link, mkdir, open, readFile, stat, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { VzsbError } from '../../common/errors.js';

/**
 * An exclusive lock between processes on one host: a file created with O_EXCL holding the
 * holder's pid and its start time (from /proc/<pid>/stat, so a recycled pid is not mistaken
 * for the holder). The file is written under a temporary name and hard-linked into place, so
 * a lock file is never seen empty or half-written. A lock whose holder is gone is stale and
 * taken over; the takeover re-reads the file just before removing it, so only the stale
 * content is ever removed. An empty lock file (a writer of the older create-then-write kind,
 * between its two steps) counts as held for a few seconds.
 */
export interface PidLock {
  path: string;
  release(): Promise<void>;
}

export class LockHeldError extends VzsbError {
  readonly pid: number;
  /** What the holder said it is (e.g. "daemon", "reclaim"). */
  readonly role: string;
  constructor(path: string, pid: number, role: string) {
    super('E_LOCKED', `${path} is held by process ${pid}${role ? ` (${role})` : ''}`);
    this.name = 'LockHeldError';
    this.pid = pid;
    this.role = role;
  }
}

export async function acquirePidLock(path: string, options: { role?: string; procRoot?: string } = {}): Promise<PidLock> {
  const procRoot = options.procRoot ?? '/proc';
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const mine = `${process.pid} ${await startTimeOf(process.pid, procRoot)} ${options.role ?? ''}`.trimEnd() + '\n';
  const tmp = `${path}.${process.pid}.${Math.random().toString(36).slice(2, 10)}`;
  const fh = await open(tmp, 'wx', 0o600);
  try {
    await fh.writeFile(mine);
    await fh.sync();
  } finally {
    await fh.close();
  }
  try {
    for (let attempt = 0; attempt < 3; attempt++) {
      try {
        await link(tmp, path);
        return {
          path,
          release: async () => {
            if ((await readFile(path, 'utf8').catch(() => '')) === mine) await unlink(path).catch(() => {});
          },
        };
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      }
      const content = await readFile(path, 'utf8').catch(() => undefined);
      if (content === undefined) continue; // released in between: try again
      const [pidText, start, role] = content.trim().split(/\s+/);
      const pid = Number(pidText);
      if (Number.isInteger(pid) && pid > 0 && (await alive(pid, start, procRoot))) throw new LockHeldError(path, pid, role ?? '');
      if (content === '' && Date.now() - ((await stat(path).catch(() => undefined))?.mtimeMs ?? 0) < EMPTY_GRACE_MS) {
        throw new LockHeldError(path, 0, 'starting');
      }
      // Stale (holder gone, or an empty file of a holder that died at once): remove exactly what we read.
      if ((await readFile(path, 'utf8').catch(() => undefined)) === content) await unlink(path).catch(() => {});
    }
  } finally {
    await unlink(tmp).catch(() => {});
  }
  throw new VzsbError('E_LOCKED', `${path}: could not take the lock (contended)`);
}

/** How long an empty lock file counts as a holder that is still writing it. */
const EMPTY_GRACE_MS = 5000;

async function alive(pid: number, start: string | undefined, procRoot: string): Promise<boolean> {
  const now = await startTimeOf(pid, procRoot);
  if (now === undefined) return false;
  return start === undefined || start === 'undefined' || start === now;
}

/** Field 22 of /proc/<pid>/stat (after the parenthesised command name, which may hold spaces). */
async function startTimeOf(pid: number, procRoot: string): Promise<string | undefined> {
  try {
    const stat = await readFile(`${procRoot}/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19];
  } catch {
    return undefined;
  }
}
