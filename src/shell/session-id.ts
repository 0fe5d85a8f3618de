import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';

/**
 * A login session's id as the hypervisor counts it: this gateway's host name, the login's
 * process and a random part, unique across gateways and agent restarts. Characters as the
 * API's session id allows (letters, digits, . _ : @ -).
 */
export function newSessionId(pid: number, host: string = hostname()): string {
  const name = host.replace(/[^A-Za-z0-9.-]/g, '-').replace(/^[^A-Za-z0-9]+/, '').slice(0, 64) || 'gateway';
  return `${name}:${pid}:${randomBytes(6).toString('hex')}`;
}
