import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { releaseLease } from './balancer-client.js';
import type { GatewayConfig } from './config.js';
import { balancerOptions } from './session.js';
import { isAlive } from './session-registry.js';

/**
 * What a session agent that died (kill -9, OOM) leaves behind: the markers of its sessions
 * (`<sessionsDir>/<user>/<client pid>`, whose clients exited when the agent's socket closed)
 * and those users' leases. A starting agent removes every marker whose process is gone and
 * releases the lease of each user who had such a marker and has no live session left on this
 * gateway (checked again just before the release), as their last logout would have. A user
 * with another live session here keeps the lease.
 */
export interface CleanupReport {
  markersRemoved: number;
  released: string[];
  kept: string[];
  failed: { user: string; error: string }[];
}

export async function cleanUpDeadSessions(
  config: GatewayConfig,
  log: Logger,
  deps: { alive?: (pid: number) => boolean; release?: (user: string) => Promise<unknown> } = {},
): Promise<CleanupReport> {
  const alive = deps.alive ?? isAlive;
  const release = deps.release ?? ((user: string) => releaseLease(balancerOptions(config, log), user, undefined, config.releaseTimeoutMs));
  const report: CleanupReport = { markersRemoved: 0, released: [], kept: [], failed: [] };
  const entries = await readdir(config.sessionsDir, { withFileTypes: true }).catch(() => []);
  const users: string[] = [];
  for (const entry of entries) {
    if (!entry.isDirectory()) continue;
    const dir = join(config.sessionsDir, entry.name);
    let dead = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      const pid = Number(name);
      if (!Number.isInteger(pid) || pid <= 0 || alive(pid)) continue;
      await unlink(join(dir, name)).catch(() => {});
      dead++;
    }
    report.markersRemoved += dead;
    if (dead > 0) users.push(entry.name);
  }
  const liveSessions = async (user: string) => (await readdir(join(config.sessionsDir, user)).catch(() => [] as string[])).filter((n) => alive(Number(n))).length;
  await Promise.all(
    users.map(async (user) => {
      if ((await liveSessions(user)) > 0) {
        report.kept.push(user);
        return;
      }
      try {
        await release(user);
        report.released.push(user);
      } catch (err) {
        report.failed.push({ user, error: (err as Error).message });
      }
    }),
  );
  report.released.sort();
  if (report.markersRemoved > 0) log.info('agent.cleanup', { ...report });
  for (const f of report.failed) log.warn('agent.cleanup-release-failed', f);
  return report;
}
