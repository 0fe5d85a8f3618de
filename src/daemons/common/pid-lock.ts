import { mkdir, open, readFile, unlink } from 'node:fs/promises';
import { dirname } from 'node:path';
import { VzsbError } from '../../common/errors.js';

/**
 * An exclusive lock between processes on one host: a file created with O_EXCL holding the
 * holder's pid and its start time (from /proc/<pid>/stat, so a recycled pid is not mistaken
 * for the holder). A lock whose holder is gone is stale and taken over; the takeover re-reads
 * the file just before removing it, so only the stale content is ever removed.
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
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const fh = await open(path, 'wx', 0o600);
      try {
        await fh.writeFile(mine);
        await fh.sync();
      } finally {
        await fh.close();
      }
      return {
        path,
        release: async () => {
          if ((await readFile(path, 'utf8').catch(() => '')) === mine) await unlink(path).catch(() => {});
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const content = await readFile(path, 'utf8').catch(() => '');
    const [pidText, start, role] = content.trim().split(/\s+/);
    const pid = Number(pidText);
    if (Number.isInteger(pid) && pid > 0 && (await alive(pid, start, procRoot))) throw new LockHeldError(path, pid, role ?? '');
    // Stale (holder gone, or a half-written file of a holder that died at once): remove exactly what we read.
    if ((await readFile(path, 'utf8').catch(() => undefined)) === content) await unlink(path).catch(() => {});
  }
  throw new VzsbError('E_LOCKED', `${path}: could not take the lock (contended)`);
}

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
