import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, type Logger } from '../../src/common/log.js';
import { parseBalancerConfig, type BalancerConfigInput } from '../../src/daemons/balancer/config.js';
import { rendezvousOrder } from '../../src/daemons/balancer/rendezvous.js';
import { startBalancer, type RunningBalancer } from '../../src/daemons/balancer/serve.js';
import type { ContainerDriver } from '../../src/daemons/drivers/types.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { parseHypervisorConfig } from '../../src/daemons/hypervisor/config.js';
import { startHypervisor, type RunningHypervisor } from '../../src/daemons/hypervisor/serve.js';

/**
 * Real daemons on loopback for tests: hypervisors (in-memory driver by default, or any driver
 * passed in) and balancers in front of them, each on its own port with its own tokens and a
 * captured JSON log. Everything started is stopped by `teardown` (ava's t.teardown).
 *
 *   const cluster = await startCluster(t, { hypervisors: [{ name: 'hyp1', standby: 2, max: 4 }] });
 *   await httpCall(cluster.balancer.url, 'POST', '/v1/leases', { token: cluster.tokens.lease, body });
 */
export interface Teardown {
  teardown(fn: () => Promise<void> | void): void;
}

export interface CapturedLog {
  logger: Logger;
  records: Record<string, unknown>[];
  /** Resolves with the first record for `event` matching `where` (now or later). */
  waitFor(event: string, where?: (r: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  text(): string;
}

export function captureLog(base: Record<string, unknown> = {}): CapturedLog {
  const records: Record<string, unknown>[] = [];
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  const logger = createLogger({
    level: 'debug',
    base,
    write: (line) => {
      lines.push(line);
      records.push(JSON.parse(line) as Record<string, unknown>);
      for (const w of [...waiters]) w();
    },
  });
  return {
    logger,
    records,
    text: () => lines.join('\n'),
    waitFor: (event, where = () => true, timeoutMs = 20_000) =>
      new Promise((resolve, reject) => {
        const check = () => {
          const found = records.find((r) => r.event === event && where(r));
          if (!found) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(new Error(`no "${event}" log record within ${timeoutMs} ms`));
        }, timeoutMs);
        waiters.add(check);
        check();
      }),
  };
}

export interface TestHypervisor {
  name: string;
  url: string;
  /** The token a balancer presents to it (lease and admin scope). */
  token: string;
  /** An admin-only token for tests that call it directly. */
  adminToken: string;
  driver: ContainerDriver;
  daemon: RunningHypervisor;
  log: CapturedLog;
  stateDir: string;
  /** Close its server (as if the host went away); idempotent. */
  stop(): Promise<void>;
  /**
   * Start it again after `stop` (a daemon restart): the same port, state directory and
   * containers (an in-memory driver reopened on the same runtime). `daemon` is the new one.
   */
  restart(): Promise<void>;
}

export interface HypervisorSpec {
  name: string;
  standby: number;
  max: number;
  graceSeconds?: number;
  /** Default: a MemoryDriver with prefix "<name>-" (letters and digits of the name). */
  driver?: ContainerDriver;
  /** Container id prefix; with `driver`, the one that driver uses. */
  prefix?: string;
  /** Milliseconds each in-memory driver operation takes. */
  latencyMs?: number;
  /** More `pool:` settings of the hypervisor config (idleSeconds, loginSeconds, ...). */
  pool?: Record<string, unknown>;
  /** The containers' sshd port reported with each lease (default 22). */
  sshPort?: number;
}

export async function startTestHypervisor(t: Teardown, spec: HypervisorSpec): Promise<TestHypervisor> {
  const stateDir = await mkdtemp(join(tmpdir(), `vzsb-${spec.name}-`));
  const slug = spec.name.toLowerCase().replace(/[^a-z0-9]/g, '').slice(0, 8) || 'h';
  const prefix = spec.prefix ?? `${slug}-`;
  const token = `balancer-to-${slug}-0123456789abcdef`;
  const adminToken = `admin-of-${slug}-0123456789abcdef`;
  const config = parseHypervisorConfig({
    listen: { host: '127.0.0.1', port: 0 },
    tokens: { lease: [token], admin: [token, adminToken], metrics: [adminToken] },
    stateDir,
    sshPort: spec.sshPort ?? 22,
    pool: { standby: spec.standby, max: spec.max, graceSeconds: spec.graceSeconds ?? 0, checkSeconds: 3600, ...spec.pool },
    driver: { kind: 'memory', prefix },
  });
  const log = captureLog({ daemon: 'hypervisor', hypervisor: spec.name });
  const driver = spec.driver ?? new MemoryDriver({ prefix, latencyMs: spec.latencyMs ?? 0 });
  const daemon = await startHypervisor(config, { source: `${spec.name} (test)`, logger: log.logger, signals: false, driver: { driver, prefix } });
  // The pool fills its standby in the background: wait until it is ready, so placement is predictable.
  await daemon.pool.settled();
  let stopping: Promise<void> | undefined;
  const h: TestHypervisor = {
    name: spec.name,
    url: daemon.served.url,
    token,
    adminToken,
    driver,
    daemon,
    log,
    stateDir,
    stop: () => (stopping ??= h.daemon.stop()),
    restart: async () => {
      await h.stop();
      if (!(driver instanceof MemoryDriver)) throw new Error('restart needs the in-memory driver');
      const again = { ...config, listen: { host: '127.0.0.1', port: daemon.served.port } };
      h.daemon = await startHypervisor(again, { source: `${spec.name} (test, restarted)`, logger: log.logger, signals: false, driver: { driver: driver.reopen(), prefix } });
      stopping = undefined;
    },
  };
  t.teardown(async () => {
    await h.stop();
    await rm(stateDir, { recursive: true, force: true });
  });
  return h;
}

export const BALANCER_TOKENS = {
  lease: 'gateway-lease-token-0123456789',
  admin: 'instructor-admin-token-0123456789',
  metrics: 'prometheus-metrics-token-0123456789',
} as const;

export interface TestBalancer {
  url: string;
  tokens: typeof BALANCER_TOKENS;
  running: RunningBalancer;
  log: CapturedLog;
  stop(): Promise<void>;
}

/**
 * balancer.yaml text for a `vzsb balancer --config` child process: loopback, port 0 (read the
 * port from its `daemon.listening` log line), BALANCER_TOKENS, and `extra` YAML lines appended.
 */
export function balancerConfigYaml(hypervisors: readonly Pick<TestHypervisor, 'name' | 'url' | 'token'>[], extra = ''): string {
  return `listen: {host: 127.0.0.1, port: 0}
tokens:
  lease: [${BALANCER_TOKENS.lease}]
  admin: [${BALANCER_TOKENS.admin}]
  metrics: [${BALANCER_TOKENS.metrics}]
hypervisors:
${hypervisors.map((h) => `  - {name: ${h.name}, url: "${h.url}", token: ${h.token}}`).join('\n')}
health: {intervalMs: 300, timeoutMs: 5000}
adminTimeoutMs: 15000
${extra}`;
}

export type BalancerOverrides = Partial<Pick<BalancerConfigInput, 'health' | 'lease' | 'adminTimeoutMs' | 'bodyLimitBytes'>>;

export async function startTestBalancer(
  t: Teardown,
  hypervisors: readonly Pick<TestHypervisor, 'name' | 'url' | 'token'>[],
  overrides: BalancerOverrides = {},
  options: { waitUp?: boolean } = {},
): Promise<TestBalancer> {
  const config = await parseBalancerConfig(
    {
      listen: { host: '127.0.0.1', port: 0 },
      tokens: { lease: [BALANCER_TOKENS.lease], admin: [BALANCER_TOKENS.admin], metrics: [BALANCER_TOKENS.metrics] },
      hypervisors: hypervisors.map((h) => ({ name: h.name, url: h.url, token: h.token })),
      // Generous: on a loaded 2-core machine (parallel test files, fsync of state files) an
      // in-memory hypervisor has been seen taking over 3 s to answer on loopback.
      health: { intervalMs: 300, timeoutMs: 5000 },
      lease: { deadlineMs: 30_000, attemptTimeoutMs: 20_000, lookupTimeoutMs: 10_000 },
      adminTimeoutMs: 15_000,
      ...overrides,
    },
    'balancer (test)',
  );
  const log = captureLog({ daemon: 'balancer' });
  const running = await startBalancer(config, { logger: log.logger, signals: false, processMetrics: false });
  let stopping: Promise<void> | undefined;
  const stop = () => (stopping ??= running.stop());
  t.teardown(stop);
  if (options.waitUp !== false) await waitAllUp(running, hypervisors.map((h) => h.name));
  return { url: running.url, tokens: BALANCER_TOKENS, running, log, stop };
}

/** Poll until the balancer sees every named hypervisor up (at most 20 s). */
export async function waitAllUp(running: RunningBalancer, names: readonly string[]): Promise<void> {
  const until = Date.now() + 20_000;
  while (!names.every((n) => running.health.isUp(n))) {
    if (Date.now() > until) throw new Error(`hypervisors not up for the balancer: ${JSON.stringify(running.health.all())}`);
    await running.health.pollAll();
  }
}

export interface TestCluster {
  hypervisors: TestHypervisor[];
  balancer: TestBalancer;
  tokens: typeof BALANCER_TOKENS;
  hypervisor(name: string): TestHypervisor;
}

/** Hypervisors (started in parallel) and one balancer in front of them. */
export async function startCluster(t: Teardown, options: { hypervisors: HypervisorSpec[]; balancer?: BalancerOverrides }): Promise<TestCluster> {
  const hypervisors = await Promise.all(options.hypervisors.map((spec) => startTestHypervisor(t, spec)));
  const balancer = await startTestBalancer(t, hypervisors, options.balancer);
  return {
    hypervisors,
    balancer,
    tokens: BALANCER_TOKENS,
    hypervisor: (name) => {
      const h = hypervisors.find((x) => x.name === name);
      if (!h) throw new Error(`no test hypervisor ${name}`);
      return h;
    },
  };
}

export interface HttpAnswer {
  status: number;
  body: any;
  text: string;
  headers: Headers;
}

/** One HTTP request with an optional bearer token and JSON body (or a raw body). */
export async function httpCall(
  base: string,
  method: string,
  path: string,
  options: { token?: string; body?: unknown; raw?: string; headers?: Record<string, string> } = {},
): Promise<HttpAnswer> {
  const headers: Record<string, string> = { ...options.headers };
  if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
  let body: string | undefined = options.raw;
  if (options.body !== undefined) {
    body = JSON.stringify(options.body);
    headers['content-type'] ??= 'application/json';
  }
  const res = await fetch(base + path, { method, headers, body });
  const text = await res.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.status, body: parsed, text, headers: res.headers };
}

/**
 * A user name (`base`, else `base` plus a number) whose home among `hypervisors` is `home`: the
 * balancer places a new user on their home when it has room (rendezvous hashing, docs/balancer.md).
 */
export function userHomedAt(hypervisors: readonly string[], home: string, base: string): string {
  for (let i = 0; i < 10_000; i++) {
    const user = i === 0 ? base : `${base}${i}`;
    if (rendezvousOrder(user, hypervisors)[0] === home) return user;
  }
  throw new Error(`no user name like ${base} has home ${home}`);
}
