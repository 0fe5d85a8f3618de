import type { ReclaimReason } from '../../api/v1/hypervisor.js';
import type { PoolConfig } from './config.js';
import type { SessionRecord } from './container-table.js';

/**
 * When a lease ends by itself (docs/hypervisor.md, "Reclaim"), when a registered session is
 * stale, when a claim is over, and when a lease's maximum session length runs out. Pure: the
 * pool's reclaim pass reads the ssh sessions, asks these, and applies the answers.
 */

export type ReclaimPolicy = Pick<PoolConfig, 'maxSessionSeconds' | 'graceSeconds' | 'idleSeconds' | 'loginSeconds'>;

/** What the policy reads of a lease (a leased container record). */
export interface LeaseTimes {
  grantedAt?: number;
  lastActiveAt?: number;
  loggedIn?: boolean;
  releasedAt?: number;
}

/**
 * Why the lease ends now, or undefined (kept). `sessions` is the number of live ssh sessions
 * in the container: only the maximum session length ends a lease that has one.
 */
export function reclaimReason(lease: LeaseTimes, sessions: number, now: number, c: ReclaimPolicy): ReclaimReason | undefined {
  const granted = lease.grantedAt ?? now;
  if (c.maxSessionSeconds !== 'none' && now - granted >= c.maxSessionSeconds * 1000) return 'session-limit';
  if (sessions > 0) return undefined;
  if (lease.releasedAt !== undefined && now - lease.releasedAt >= c.graceSeconds * 1000) return 'released';
  if (lease.loggedIn && now - (lease.lastActiveAt ?? granted) >= c.idleSeconds * 1000) return 'idle';
  if (!lease.loggedIn && now - granted >= (c.loginSeconds ?? c.idleSeconds) * 1000) return 'never-used';
  return undefined;
}

/**
 * A released lease whose grace period is over while another terminal still has a session:
 * the release is forgotten and the lease lives on (under the idle rule).
 */
export function keptPastGrace(lease: LeaseTimes, reason: ReclaimReason | undefined, sessions: number, now: number, c: Pick<ReclaimPolicy, 'graceSeconds'>): boolean {
  return lease.releasedAt !== undefined && reason === undefined && sessions > 0 && now - lease.releasedAt >= c.graceSeconds * 1000;
}

/** A registered session younger than this may not have connected yet: never pruned. */
export const SESSION_CONNECT_MS = 120_000;

/**
 * Registered sessions beyond the `live` ssh sessions the container has, oldest first and only
 * those old enough to have connected: sessions whose gateway never ended them (it died).
 */
export function staleSessions(registered: readonly SessionRecord[], live: number, now: number): SessionRecord[] {
  const stale = registered.length - live;
  if (stale <= 0) return [];
  return registered.filter((s) => now - s.since >= SESSION_CONNECT_MS).slice(0, stale);
}

/** A claim (as the users' home) made at `since` no longer holds. */
export function claimExpired(since: number, now: number, claimSeconds: number): boolean {
  return now - since >= claimSeconds * 1000;
}

/** When the maximum session length ends a lease granted at `grantedAt` (null: no maximum), and how far off that is. */
export function expiry(grantedAt: number, now: number, max: PoolConfig['maxSessionSeconds']): { expiresAt: string | null; secondsLeft: number | null } {
  if (max === 'none') return { expiresAt: null, secondsLeft: null };
  const end = grantedAt + max * 1000;
  return { expiresAt: new Date(end).toISOString(), secondsLeft: Math.max(0, Math.round((end - now) / 1000)) };
}
