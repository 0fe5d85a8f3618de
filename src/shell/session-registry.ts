import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Which sessions of a user are open on this gateway: one marker file per session process,
 * `<dir>/<user>/<pid>`, holding when it started and its session id at the hypervisor (which
 * counts the sessions of every gateway, and ends the lease with the last). A marker whose
 * process is gone (killed -9) does not count; an agent restart releases its session
 * (agent-cleanup.ts). The directory belongs to the service user.
 */
export class SessionRegistry {
  constructor(
    private readonly dir: string,
    private readonly pid: number = process.pid,
    private readonly alive: (pid: number) => boolean = isAlive,
  ) {}

  /** Add this session's marker; returns how many other live sessions the user has here. */
  async enter(user: string, session?: string): Promise<number> {
    const userDir = join(this.dir, user);
    await mkdir(userDir, { recursive: true, mode: 0o700 });
    await writeFile(join(userDir, String(this.pid)), `${Date.now()}\n${session ?? ''}\n`, { mode: 0o600 });
    return this.others(userDir);
  }

  /** Remove this session's marker; returns how many other live sessions the user still has. */
  async leave(user: string): Promise<number> {
    const userDir = join(this.dir, user);
    await unlink(join(userDir, String(this.pid))).catch(() => {});
    return this.others(userDir);
  }

  private async others(userDir: string): Promise<number> {
    let others = 0;
    for (const name of await readdir(userDir).catch(() => [] as string[])) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid <= 0 || pid === this.pid) continue;
      if (this.alive(pid)) others++;
      else await unlink(join(userDir, name)).catch(() => {});
    }
    return others;
  }
}

/** The session id a marker file names, if any (markers of older gateways have none). */
export async function markerSession(path: string): Promise<string | undefined> {
  const text = await readFile(path, 'utf8').catch(() => '');
  const id = text.split('\n')[1]?.trim();
  return id ? id : undefined;
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
