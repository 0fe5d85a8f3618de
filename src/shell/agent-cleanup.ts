import { readdir, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../common/log.js';
import { releaseLease } from './balancer-client.js';
import type { GatewayConfig } from './config.js';
import { balancerOptions } from './session.js';
import { isAlive, markerSession } from './session-registry.js';

/**
 * What a session agent that died (kill -9, OOM) leaves behind: the markers of its sessions
 * (`<sessionsDir>/<user>/<client pid>`, whose clients exited when the agent's socket closed)
 * and those sessions at the hypervisor. A starting agent removes every marker whose process is
 * gone and releases its session (the marker names it), as its logout would have: the
 * hypervisor ends the lease with the user's last session on any gateway. A marker without a
 * session id (written before sessions were counted at the hypervisor) releases the user's
 * lease when the user has no live session left on this gateway (checked again just before).
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
  deps: { alive?: (pid: number) => boolean; release?: (user: string, session?: string) => Promise<unknown> } = {},
): Promise<CleanupReport> {
  const alive = deps.alive ?? isAlive;
  const release = deps.release ?? ((user: string, session?: string) => releaseLease(balancerOptions(config, log), user, undefined, config.releaseTimeoutMs, session));
  const sessions = new Map<string, string[]>();
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
      const session = await markerSession(join(dir, name));
      await unlink(join(dir, name)).catch(() => {});
      if (session) sessions.set(entry.name, [...(sessions.get(entry.name) ?? []), session]);
      else dead++;
    }
    report.markersRemoved += dead + (sessions.get(entry.name)?.length ?? 0);
    if (dead > 0) users.push(entry.name);
  }
  await Promise.all(
    [...sessions].map(async ([user, ids]) => {
      for (const id of ids) {
        try {
          await release(user, id);
          if (!report.released.includes(user)) report.released.push(user);
        } catch (err) {
          report.failed.push({ user, error: (err as Error).message });
        }
      }
    }),
  );
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
