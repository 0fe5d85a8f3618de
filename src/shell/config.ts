import { readFile } from 'node:fs/promises';
import { VzsbError, ValidationError } from '../common/errors.js';

/**
 * /etc/vzsandbox/gateway.yaml (mode 0640 root:<service group>: it holds the lease token).
 *
 * Read on every login, so it stays off the heavy paths: the file is written as JSON (a subset
 * of YAML) with `#` comment lines and parsed with JSON.parse; a hand-edited YAML file still
 * works through the YAML library, loaded only then. The checks are written out instead of a
 * zod schema because zod alone costs more start-up time than the rest of the login shell;
 * errors have the same shape (`gateway.yaml: balancers[1]: expected an http(s) URL, got "x"`).
 */
export interface GatewayConfig {
  /** Balancer base URLs, tried in this order (a single hypervisor daemon answers the same API). */
  balancers: string[];
  /** Bearer token with the "lease" scope. */
  token: string;
  /** TCP connect to one balancer. */
  connectTimeoutMs: number;
  /** One lease request, from connect to the full answer (a lease may wait for a container build). */
  requestTimeoutMs: number;
  /** All lease attempts over all balancers together. */
  leaseTimeoutMs: number;
  /** Releasing the lease at logout, all balancers together. */
  releaseTimeoutMs: number;
  /** Until the container's sshd greets. */
  sshReadyTimeoutMs: number;
  /** ssh2 handshake and authentication. */
  sshConnectTimeoutMs: number;
  /** JSON lines, owned by the service user, not readable by students. */
  logFile: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  /** Live-session markers, so the lease is released only when a user's last session ends. */
  sessionsDir: string;
  /** Sessions one user may have open at once on this gateway (each is a process of the service user). */
  maxSessionsPerUser: number;
  /** How long open sessions may go on after the session agent is told to stop (a restart, a deploy). */
  agentDrainSeconds: number;
  /** Each student's keys from the inventory (`<dir>/<user>`), installed in their container for the tunnel. */
  studentKeysDir: string;
}

export const DEFAULT_CONFIG_PATH = '/etc/vzsandbox/gateway.yaml';

const DEFAULTS = {
  connectTimeoutMs: 1000,
  requestTimeoutMs: 20_000,
  leaseTimeoutMs: 30_000,
  releaseTimeoutMs: 3000,
  sshReadyTimeoutMs: 10_000,
  sshConnectTimeoutMs: 10_000,
  logFile: '/var/log/vzsandbox/gateway.log',
  logLevel: 'info' as const,
  sessionsDir: '/run/vzsandbox/gateway',
  maxSessionsPerUser: 8,
  agentDrainSeconds: 3600,
  studentKeysDir: '/etc/vzsandbox/student-keys',
};

const KNOWN = new Set(['balancers', 'token', 'timeouts', 'log', 'sessionsDir', 'maxSessionsPerUser', 'agentDrainSeconds', 'studentKeysDir']);
const TIMEOUTS = { connectMs: 'connectTimeoutMs', requestMs: 'requestTimeoutMs', leaseMs: 'leaseTimeoutMs', releaseMs: 'releaseTimeoutMs', sshReadyMs: 'sshReadyTimeoutMs', sshConnectMs: 'sshConnectTimeoutMs' } as const;

export async function loadGatewayConfig(path: string): Promise<GatewayConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VzsbError('E_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseGatewayConfig(await parseConfigText(text, path), path);
}

/** JSON with `#` comment lines first; anything else goes to the YAML parser. */
export async function parseConfigText(text: string, source: string): Promise<unknown> {
  const withoutComments = text.replace(/^[ \t]*#.*$/gm, '');
  try {
    return JSON.parse(withoutComments);
  } catch {
    const { parse } = await import('yaml');
    try {
      return parse(text);
    } catch (err) {
      throw new VzsbError('E_CONFIG', `${source}: not valid YAML: ${(err as Error).message}`, { cause: err });
    }
  }
}

export function parseGatewayConfig(value: unknown, source = 'gateway config'): GatewayConfig {
  const root = mapping(value, '', source);
  for (const key of Object.keys(root)) if (!KNOWN.has(key)) throw new ValidationError(key, `one of ${[...KNOWN].join(', ')}`, key, source);
  const list = root.balancers;
  if (!Array.isArray(list) || list.length === 0) throw new ValidationError('balancers', 'a non-empty list of URLs', list, source);
  const balancers = list.map((u, i) => {
    if (typeof u !== 'string' || !/^https?:\/\/[^\s/]+(\/[^\s]*)?$/.test(u)) throw new ValidationError(`balancers[${i}]`, 'an http(s) URL like "http://10.0.0.5:8760"', u, source);
    return u.replace(/\/+$/, '');
  });
  const token = root.token;
  if (typeof token !== 'string' || token.length < 16 || !/^[\x21-\x7e]+$/.test(token)) {
    // Never echo the token itself.
    throw new ValidationError('token', 'a lease token of at least 16 printable characters without spaces', typeof token === 'string' ? 'a string that is not' : token, source);
  }
  const config: GatewayConfig = { ...DEFAULTS, balancers, token };
  if (root.timeouts !== undefined) {
    const t = mapping(root.timeouts, 'timeouts', source);
    for (const [key, v] of Object.entries(t)) {
      const field = TIMEOUTS[key as keyof typeof TIMEOUTS];
      if (!field) throw new ValidationError(`timeouts.${key}`, `one of ${Object.keys(TIMEOUTS).join(', ')}`, key, source);
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 10 || v > 600_000) throw new ValidationError(`timeouts.${key}`, 'milliseconds from 10 to 600000', v, source);
      config[field] = v;
    }
  }
  if (root.log !== undefined) {
    const log = mapping(root.log, 'log', source);
    for (const [key, v] of Object.entries(log)) {
      if (key === 'file') {
        if (typeof v !== 'string' || !v.startsWith('/')) throw new ValidationError('log.file', 'an absolute path', v, source);
        config.logFile = v;
      } else if (key === 'level') {
        if (v !== 'debug' && v !== 'info' && v !== 'warn' && v !== 'error') throw new ValidationError('log.level', 'one of debug, info, warn, error', v, source);
        config.logLevel = v;
      } else throw new ValidationError(`log.${key}`, 'one of file, level', key, source);
    }
  }
  if (root.sessionsDir !== undefined) {
    if (typeof root.sessionsDir !== 'string' || !root.sessionsDir.startsWith('/')) throw new ValidationError('sessionsDir', 'an absolute path', root.sessionsDir, source);
    config.sessionsDir = root.sessionsDir;
  }
  if (root.studentKeysDir !== undefined) {
    if (typeof root.studentKeysDir !== 'string' || !root.studentKeysDir.startsWith('/')) throw new ValidationError('studentKeysDir', 'an absolute path', root.studentKeysDir, source);
    config.studentKeysDir = root.studentKeysDir;
  }
  if (root.maxSessionsPerUser !== undefined) {
    const v = root.maxSessionsPerUser;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 1 || v > 1000) throw new ValidationError('maxSessionsPerUser', 'a whole number from 1 to 1000', v, source);
    config.maxSessionsPerUser = v;
  }
  if (root.agentDrainSeconds !== undefined) {
    const v = root.agentDrainSeconds;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > 86_400) throw new ValidationError('agentDrainSeconds', 'whole seconds from 0 to 86400', v, source);
    config.agentDrainSeconds = v;
  }
  return config;
}

function mapping(value: unknown, path: string, source: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw new ValidationError(path, 'a mapping', value, source);
  return value as Record<string, unknown>;
}
