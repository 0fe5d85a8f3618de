import test, { type ExecutionContext } from 'ava';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hypervisorRoutes } from '../../src/api/v1/hypervisor.js';
import { createLogger } from '../../src/common/log.js';
import { ManualClock } from '../../src/daemons/common/clock.js';
import { serve, type Served } from '../../src/daemons/common/serve.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { eventually } from '../../src/daemons/drivers/conformance.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { createHypervisorApp } from '../../src/daemons/hypervisor/app.js';
import { parseHypervisorConfig, type HypervisorConfig } from '../../src/daemons/hypervisor/config.js';
import { LeaseStore } from '../../src/daemons/hypervisor/lease-store.js';
import { HypervisorMetrics } from '../../src/daemons/hypervisor/metrics.js';
import { Pool } from '../../src/daemons/hypervisor/pool.js';
import { httpCall } from '../helpers/daemons.js';
import { checkServedRoutes } from '../helpers/served-routes.js';

const TOKENS = {
  lease: 'lease-token-0123456789abcdef',
  admin: 'admin-token-0123456789abcdef',
  metrics: 'metrics-token-0123456789abcdef',
};
const KEY = generateEd25519('gateway').publicKey;

interface Api {
  url: string;
  pool: Pool;
  driver: MemoryDriver;
  logLines: string[];
  call(method: string, path: string, options?: { token?: string | null; body?: unknown; raw?: string; headers?: Record<string, string> }): Promise<{ status: number; body: any; text: string; headers: Headers }>;
}

async function startApi(t: ExecutionContext, pool: { standby: number; max: number; graceSeconds?: number } = { standby: 2, max: 3 }): Promise<Api> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-api-'));
  const logLines: string[] = [];
  const logger = createLogger({ level: 'debug', write: (l) => logLines.push(l) });
  const config: HypervisorConfig = parseHypervisorConfig({
    listen: { host: '127.0.0.1', port: 0 },
    tokens: { lease: [TOKENS.lease], admin: [TOKENS.admin], metrics: [TOKENS.metrics] },
    stateDir: dir,
    bodyLimitBytes: 4096,
    pool,
    driver: { kind: 'memory' },
  });
  const driver = new MemoryDriver();
  const clock = new ManualClock();
  const metrics = new HypervisorMetrics({ processMetrics: false });
  const p = new Pool({ driver, store: new LeaseStore(dir), clock, logger, config: config.pool, prefix: 'vzsb-', observer: metrics });
  await p.start();
  await p.settled();
  const app = createHypervisorApp({ driver, pool: p, clock, logger, config, metrics });
  const served: Served = await serve(app, { listen: config.listen, logger, signals: false });
  t.teardown(async () => {
    await served.stop();
    await p.stop();
    await rm(dir, { recursive: true, force: true });
  });
  return {
    url: served.url,
    pool: p,
    driver,
    logLines,
    call(method, path, options = {}) {
      // the admin token unless told otherwise; null sends none
      const token = options.token === undefined ? TOKENS.admin : options.token;
      return httpCall(served.url, method, path, { ...options, token: token ?? undefined });
    },
  };
}

const ENDPOINTS: { method: string; path: string; scope: keyof typeof TOKENS; body?: unknown }[] = [
  { method: 'POST', path: '/v1/leases', scope: 'lease', body: { user: 'alice', publicKey: KEY } },
  { method: 'DELETE', path: '/v1/leases/alice', scope: 'lease' },
  { method: 'GET', path: '/v1/leases', scope: 'admin' },
  { method: 'GET', path: '/v1/containers', scope: 'admin' },
  { method: 'GET', path: '/v1/users/alice', scope: 'admin' },
  { method: 'POST', path: '/v1/containers/vzsb-0001/reset', scope: 'admin', body: {} },
  { method: 'POST', path: '/v1/leases/alice/reset', scope: 'admin', body: {} },
  { method: 'POST', path: '/v1/leases/alice/settled', scope: 'lease', body: {} },
  { method: 'POST', path: '/v1/claims/alice', scope: 'lease', body: { hypervisor: 'hyp2' } },
  { method: 'POST', path: '/v1/reset', scope: 'admin', body: {} },
  { method: 'POST', path: '/v1/reclaim', scope: 'admin', body: {} },
  { method: 'GET', path: '/metrics', scope: 'metrics' },
];

test('every endpoint but /healthz: 401 without or with a bad token, 403 with a token of another scope', async (t) => {
  const api = await startApi(t);
  for (const e of ENDPOINTS) {
    const none = await api.call(e.method, e.path, { token: null, body: e.body });
    t.is(none.status, 401, `${e.method} ${e.path} without a token`);
    t.is(none.body.error.code, 'E_UNAUTHORIZED');
    t.regex(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    const bad = await api.call(e.method, e.path, { token: TOKENS[e.scope] + 'x', body: e.body });
    t.is(bad.status, 401, `${e.method} ${e.path} with a bad token`);
    t.is(bad.body.error.message, 'the bearer token is not valid');
    for (const other of Object.keys(TOKENS) as (keyof typeof TOKENS)[]) {
      if (other === e.scope) continue;
      const wrong = await api.call(e.method, e.path, { token: TOKENS[other], body: e.body });
      t.is(wrong.status, 403, `${e.method} ${e.path} with the ${other} token`);
      t.is(wrong.body.error.code, 'E_FORBIDDEN');
    }
  }
  const basic = await api.call('GET', '/v1/leases', { token: null, headers: { authorization: `Basic ${TOKENS.admin}` } });
  t.is(basic.status, 401);
  t.deepEqual(api.pool.leases(), [], 'refused requests changed nothing');
  for (const secret of Object.values(TOKENS)) {
    t.false(api.logLines.some((l) => l.includes(secret)), 'a token reached the log');
  }
  const health = await api.call('GET', '/healthz', { token: null });
  t.is(health.status, 200);
  t.deepEqual(health.body.capacity, { clean: 2, leased: 0, building: 0, dirty: 0, broken: 0, max: 3, standby: 2 });
});

test('lease, renew and release over HTTP', async (t) => {
  const api = await startApi(t);
  const res = await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY } });
  t.is(res.status, 200);
  const lease = res.body;
  t.is(lease.container, 'vzsb-0001');
  t.is(lease.address, '198.18.0.1');
  t.is(lease.sshPort, 22);
  t.is(lease.user, 'alice');
  t.regex(lease.hostKey, /^ssh-ed25519 /);
  t.is(lease.hostKeyFingerprint, (await api.driver.hostKey('vzsb-0001')).fingerprint);
  t.regex(lease.grantedAt, /^\d{4}-\d\d-\d\dT/);
  t.is(typeof lease.ms, 'number');
  const again = await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY } });
  t.is(again.body.container, lease.container);
  // the balancer's per-lease lookup
  const held = await api.call('GET', '/v1/users/alice', { token: TOKENS.admin });
  t.like(held.body, { container: { id: lease.container, state: 'leased', user: 'alice' } });
  t.is(typeof held.body.capacity.clean, 'number');
  t.is((await api.call('GET', '/v1/users/bob', { token: TOKENS.admin })).body.container, null);
  t.is((await api.call('GET', '/v1/users/Bad!', { token: TOKENS.admin })).status, 400);
  t.true(again.body.renewed);

  const listed = await api.call('GET', '/v1/leases');
  t.deepEqual(listed.body.leases.map((l: any) => [l.user, l.container]), [['alice', 'vzsb-0001']]);
  const containers = await api.call('GET', '/v1/containers');
  t.deepEqual(
    containers.body.containers.map((c: any) => [c.id, c.state, c.user]),
    [['vzsb-0001', 'leased', 'alice'], ['vzsb-0002', 'clean', null], ['vzsb-0003', 'clean', null]],
  );
  t.truthy(Date.parse(containers.body.containers[0].since));

  const released = await api.call('DELETE', '/v1/leases/alice', { token: TOKENS.lease });
  t.is(released.status, 200);
  t.deepEqual(released.body, { user: 'alice', container: 'vzsb-0001', graceUntil: null, sessions: 0, released: true });
  const twice = await api.call('DELETE', '/v1/leases/alice', { token: TOKENS.lease });
  t.is(twice.status, 404);
  t.is(twice.body.error.code, 'E_NO_LEASE');
});

test('a degraded hypervisor renews the leases it holds but refuses a new one with 503 E_DEGRADED, naming why, without waiting for a check', async (t) => {
  const api = await startApi(t);
  const lease = (body: unknown) => api.call('POST', '/v1/leases', { token: TOKENS.lease, body });
  t.is((await lease({ user: 'alice', publicKey: KEY })).status, 200);
  api.driver.setHealthProblems(['bridge vzsbbr0 is down']);
  // The balancer's poll (or anyone's) sees it first; a lease then uses that answer.
  const health = await eventually(() => api.call('GET', '/healthz', { token: null }), (h) => h.body.status === 'degraded', 5000);
  t.deepEqual(health.body.degraded, ['bridge vzsbbr0 is down']);
  const refused = await lease({ user: 'bob', publicKey: KEY });
  t.is(refused.status, 503);
  t.is(refused.body.error.code, 'E_DEGRADED');
  t.regex(refused.body.error.message, /bridge vzsbbr0 is down/);
  const renewed = await lease({ user: 'alice', publicKey: KEY });
  t.is(renewed.status, 200, renewed.text);
  t.true(renewed.body.renewed);
  t.true(api.logLines.some((l) => l.includes('"lease.refused"') && l.includes('E_DEGRADED')));
  api.driver.setHealthProblems([]);
  await eventually(() => api.call('GET', '/healthz', { token: null }), (h) => h.body.status === 'ok', 5000);
  t.is((await lease({ user: 'bob', publicKey: KEY })).status, 200);
});

test('malformed bodies get 400 naming the field; the daemon keeps serving', async (t) => {
  const api = await startApi(t);
  const post = (body: unknown) => api.call('POST', '/v1/leases', { token: TOKENS.lease, body });
  const cases: [unknown, RegExp][] = [
    [{ publicKey: KEY }, /^request body: user: required string$/],
    [{ user: 'Alice', publicKey: KEY }, /user: expected a Unix user name .*got "Alice"/],
    [{ user: 'a'.repeat(33), publicKey: KEY }, /user: expected a Unix user name/],
    [{ user: '-rf', publicKey: KEY }, /user: expected a Unix user name/],
    [{ user: 'alice', publicKey: 'ssh-dss AAAAB3NzaC1kc3M=' }, /publicKey: expected a key type of ssh-ed25519/],
    [{ user: 'alice', publicKey: 'ssh-ed25519 AAAAC3NzaC1yc2EAAAADAQAB' }, /publicKey: expected key data that encodes a ssh-ed25519 key/],
    [{ user: 'alice', publicKey: KEY + '\nssh-ed25519 AAAA' }, /publicKey: expected a single OpenSSH public key line/],
    [{ user: 'alice', publicKey: 42 }, /publicKey: expected string, got number 42/],
    [{ user: 'alice', publicKey: KEY, admin: true }, /unknown field admin/],
    [[1, 2], /\(root\): expected object, got a list/],
  ];
  for (const [body, message] of cases) {
    const res = await post(body);
    t.is(res.status, 400, JSON.stringify(body));
    t.is(res.body.error.code, 'E_INVALID');
    t.regex(res.body.error.message, message);
  }
  const issues = (await post({ user: 'Alice', publicKey: 'x' })).body.error.issues;
  t.deepEqual(issues.map((i: any) => i.path), ['user', 'publicKey']);

  const notJson = await api.call('POST', '/v1/leases', { token: TOKENS.lease, raw: '{"user":', headers: { 'content-type': 'application/json' } });
  t.is(notJson.status, 400);
  t.is(notJson.body.error.code, 'E_BAD_JSON');
  const big = await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY, pad: 'x'.repeat(5000) } });
  t.is(big.status, 413);
  const form = await api.call('POST', '/v1/leases', { token: TOKENS.lease, raw: 'user=alice', headers: { 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(form.status, 415);
  const badParam = await api.call('DELETE', '/v1/leases/R00T', { token: TOKENS.lease });
  t.is(badParam.status, 400);
  t.regex(badParam.body.error.message, /^URL path: user: expected a Unix user name/);
  const badReset = await api.call('POST', '/v1/reset', { body: { force: 'yes' } });
  t.is(badReset.status, 400);
  t.regex(badReset.body.error.message, /force: expected boolean, got "yes"/);
  t.is((await api.call('GET', '/v1/nothing')).status, 404);
  const method = await api.call('PUT', '/v1/leases', { token: TOKENS.lease });
  t.is(method.status, 405);
  t.is(method.body.error.code, 'E_METHOD');

  const ok = await post({ user: 'alice', publicKey: KEY });
  t.is(ok.status, 200, 'still serving after every bad request');
});

test('admin resets: in use only with force; a full pool is 503 E_POOL_FULL', async (t) => {
  const api = await startApi(t, { standby: 1, max: 2 });
  const a = (await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY } })).body;
  await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'bob', publicKey: KEY } });
  const full = await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'carol', publicKey: KEY } });
  t.is(full.status, 503);
  t.is(full.body.error.code, 'E_POOL_FULL');
  t.regex(full.body.error.message, /no container is free/);

  api.driver.setSessions(a.container, 1);
  const inUse = await api.call('POST', `/v1/containers/${a.container}/reset`, { body: {} });
  t.is(inUse.status, 409);
  t.is(inUse.body.error.code, 'E_IN_USE');
  const byUser = await api.call('POST', '/v1/leases/alice/reset', { body: {} });
  t.is(byUser.status, 409);
  const all = await api.call('POST', '/v1/reset', { body: { wait: true } });
  t.is(all.status, 200);
  t.deepEqual(all.body.reset, ['vzsb-0002']);
  t.deepEqual(all.body.skipped.map((s: any) => [s.container, s.user]), [[a.container, 'alice']]);
  const forced = await api.call('POST', '/v1/leases/alice/reset', { body: { force: true, wait: true } });
  t.is(forced.status, 200);
  t.deepEqual(forced.body.reset, [a.container]);
  const gone = await api.call('POST', '/v1/containers/vzsb-0042/reset', { body: {} });
  t.is(gone.status, 404);
  const started = await api.call('POST', '/v1/reset', { body: {} });
  t.is(started.status, 202);
  await api.pool.settled();
  t.deepEqual((await api.call('GET', '/healthz', { token: null })).body.capacity, { clean: 2, leased: 0, building: 0, dirty: 0, broken: 0, max: 2, standby: 1 });
  const reclaim = await api.call('POST', '/v1/reclaim', { body: {} });
  t.is(reclaim.status, 200);
  t.deepEqual(reclaim.body.reclaimed, []);
});

test('a 5xx carries a request id and no internals; the daemon stays up', async (t) => {
  const api = await startApi(t);
  const secret = 'lxc-copy failed at /var/lib/lxc/secret-path';
  for (let i = 0; i < 3; i++) api.driver.failNext('authorizeKey', undefined, secret);
  const failed = await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY } });
  t.is(failed.status, 503);
  t.is(failed.body.error.code, 'E_LEASE_FAILED');
  t.false(failed.text.includes('secret-path'));
  t.true(api.logLines.some((l) => l.includes('secret-path')), 'the admin log has the cause');

  const original = api.pool.containers.bind(api.pool);
  api.pool.containers = () => {
    throw new TypeError(`Cannot read properties of undefined (${secret})`);
  };
  const crash = await api.call('GET', '/v1/containers');
  t.is(crash.status, 500);
  t.is(crash.body.error.code, 'E_INTERNAL');
  t.false(crash.text.includes('secret-path'));
  t.false(crash.text.includes('TypeError'));
  t.is(crash.body.error.requestId, crash.headers.get('x-request-id'));
  t.true(api.logLines.some((l) => l.includes(crash.body.error.requestId) && l.includes('secret-path')));
  api.pool.containers = original;
  t.is((await api.call('GET', '/v1/containers')).status, 200);

  // A client that hangs up in the middle of its body.
  const { port } = new URL(api.url);
  const socket = connect(Number(port), '127.0.0.1');
  await once(socket, 'connect');
  const head = `POST /v1/leases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${TOKENS.lease}\r\nContent-Type: application/json\r\nContent-Length: 500\r\n\r\n{"user":`;
  await new Promise((r) => socket.write(head, r));
  socket.destroy();
  await once(socket, 'close');
  const rejected = await eventually(async () => api.logLines.filter((l) => l.includes('E_ABORTED')).length, (n) => n > 0, 10_000);
  t.is(rejected, 1, 'logged as a rejected request');
  t.is((await api.call('GET', '/healthz', { token: null })).status, 200);
});

test('metrics: containers per state, lease latency, hits and misses, reclaims, resets, auth failures', async (t) => {
  const api = await startApi(t, { standby: 1, max: 3 });
  await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'alice', publicKey: KEY } });
  await api.call('POST', '/v1/leases', { token: TOKENS.lease, body: { user: 'bob', publicKey: KEY } });
  await api.call('GET', '/v1/leases', { token: 'nope-nope-nope-nope' });
  await api.call('GET', '/v1/leases', { token: TOKENS.lease });
  await api.call('POST', '/v1/leases/bob/reset', { body: { wait: true } });
  const res = await api.call('GET', '/metrics', { token: TOKENS.metrics });
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/plain/);
  const m = res.text;
  t.regex(m, /^vzsb_hypervisor_containers\{state="leased"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_containers\{state="broken"\} 0$/m);
  t.regex(m, /^vzsb_hypervisor_pool_max 3$/m);
  t.regex(m, /^vzsb_hypervisor_lease_duration_seconds_count\{hit="true"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_lease_duration_seconds_bucket\{le="\+Inf",hit="true"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_pool_hits_total 1$/m);
  t.regex(m, /^vzsb_hypervisor_pool_misses_total 1$/m);
  t.regex(m, /^vzsb_hypervisor_reclaims_total\{reason="reset"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_resets_total\{outcome="ok"\} \d+$/m);
  t.regex(m, /^vzsb_hypervisor_auth_failures_total\{scope="admin",reason="invalid"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_auth_failures_total\{scope="admin",reason="forbidden"\} 1$/m);
  t.regex(m, /^vzsb_hypervisor_http_requests_total\{method="POST",route="\/v1\/leases",status="200"\} 2$/m);
  t.false(m.includes('alice'), 'no user names in labels');
});

test('the OpenAPI document lists exactly the routes the app serves, which are the contract\'s, and every answer has its shape', async (t) => {
  const api = await startApi(t);
  // In this order: the lease is there to release, then gone (a 404 for its reset).
  const statuses = await checkServedRoutes(t, {
    openapi: 'hypervisor.openapi.yaml',
    routes: hypervisorRoutes,
    endpoints: ENDPOINTS,
    concrete: (route) => route.replace('{user}', 'alice').replace('{id}', 'vzsb-0001'),
    tokens: TOKENS,
    call: (method, path, options) => api.call(method, path, { token: options.token ?? null, body: options.body }),
  });
  t.deepEqual(statuses, [200, 202], 'both kinds of answer were seen');
});
