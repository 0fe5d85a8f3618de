import test from 'ava';
import { balancerRoutes } from '../../src/api/v1/balancer.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { BALANCER_TOKENS, httpCall, startCluster, userHomedAt } from '../helpers/daemons.js';
import { checkServedRoutes } from '../helpers/served-routes.js';

const KEY = generateEd25519('gateway').publicKey;
type Scope = keyof typeof BALANCER_TOKENS;

const ENDPOINTS: { method: string; path: string; scope: Scope; body?: unknown }[] = [
  { method: 'POST', path: '/v1/leases', scope: 'lease', body: { user: 'alice', publicKey: KEY } },
  { method: 'DELETE', path: '/v1/leases/alice', scope: 'lease' },
  { method: 'GET', path: '/v1/pools', scope: 'admin' },
  { method: 'GET', path: '/v1/sessions', scope: 'admin' },
  { method: 'POST', path: '/v1/reset', scope: 'admin', body: {} },
  { method: 'POST', path: '/v1/hypervisors/apia/reset', scope: 'admin', body: {} },
  { method: 'POST', path: '/v1/users/alice/reset', scope: 'admin', body: {} },
  { method: 'GET', path: '/metrics', scope: 'metrics' },
];

test('every endpoint but /healthz: 401 without or with a bad token, 403 with a token of another scope; tokens never logged', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apia', standby: 1, max: 2 }] });
  const url = c.balancer.url;
  for (const e of ENDPOINTS) {
    const none = await httpCall(url, e.method, e.path, { body: e.body });
    t.is(none.status, 401, `${e.method} ${e.path} without a token`);
    t.is(none.body.error.code, 'E_UNAUTHORIZED');
    t.regex(none.headers.get('www-authenticate') ?? '', /^Bearer /);
    const bad = await httpCall(url, e.method, e.path, { token: BALANCER_TOKENS[e.scope] + 'x', body: e.body });
    t.is(bad.status, 401, `${e.method} ${e.path} with a bad token`);
    // The hypervisor's own token is not a balancer token.
    const hypToken = await httpCall(url, e.method, e.path, { token: c.hypervisors[0]!.token, body: e.body });
    t.is(hypToken.status, 401, `${e.method} ${e.path} with a hypervisor's token`);
    for (const other of Object.keys(BALANCER_TOKENS) as Scope[]) {
      if (other === e.scope) continue;
      const wrong = await httpCall(url, e.method, e.path, { token: BALANCER_TOKENS[other], body: e.body });
      t.is(wrong.status, 403, `${e.method} ${e.path} with the ${other} token`);
      t.is(wrong.body.error.code, 'E_FORBIDDEN');
    }
  }
  const health = await httpCall(url, 'GET', '/healthz');
  t.is(health.status, 200);
  t.like(health.body, { status: 'ok', hypervisors: { up: 1, total: 1 } });
  t.deepEqual((await httpCall(c.hypervisors[0]!.url, 'GET', '/v1/leases', { token: c.hypervisors[0]!.adminToken })).body.leases, [], 'refused requests changed nothing');
  const metrics = await httpCall(url, 'GET', '/metrics', { token: BALANCER_TOKENS.metrics });
  t.regex(metrics.text, /vzsb_balancer_auth_failures_total\{scope="admin",reason="forbidden"\} \d+/);
  t.regex(metrics.text, /vzsb_balancer_auth_failures_total\{scope="lease",reason="missing"\} 2/);
  for (const secret of [...Object.values(BALANCER_TOKENS), c.hypervisors[0]!.token]) {
    t.false(c.balancer.log.text().includes(secret), 'a token reached the balancer log');
  }
});

test('bad bodies: 400 naming the field; the daemon keeps serving', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apib', standby: 1, max: 2 }] });
  const post = (path: string, options: { body?: unknown; raw?: string; headers?: Record<string, string> }, token: string = BALANCER_TOKENS.lease) =>
    httpCall(c.balancer.url, 'POST', path, { token, ...options });
  const cases: [string, Awaited<ReturnType<typeof post>>, number, RegExp][] = [
    ['no user', await post('/v1/leases', { body: { publicKey: KEY } }), 400, /user: required string/],
    ['bad user', await post('/v1/leases', { body: { user: 'Root; rm', publicKey: KEY } }), 400, /user: expected a Unix user name/],
    ['bad key', await post('/v1/leases', { body: { user: 'alice', publicKey: 'ssh-ed25519 AAAA' } }), 400, /publicKey: expected/],
    ['extra field', await post('/v1/leases', { body: { user: 'alice', publicKey: KEY, admin: true } }), 400, /unknown field admin/],
    ['not JSON', await post('/v1/leases', { raw: '{"user":', headers: { 'content-type': 'application/json' } }), 400, /not valid JSON/],
    ['too large', await post('/v1/leases', { body: { user: 'alice', publicKey: 'x'.repeat(20_000) } }), 413, /larger than/],
    ['form body', await post('/v1/leases', { raw: 'user=alice', headers: { 'content-type': 'application/x-www-form-urlencoded' } }), 415, /application\/json/],
    ['force not boolean', await post('/v1/reset', { body: { force: 'yes' } }, BALANCER_TOKENS.admin), 400, /force: expected boolean/],
    ['bad user in path', await post('/v1/users/..%2Fetc/reset', { body: {} }, BALANCER_TOKENS.admin), 400, /URL path: user: /],
    ['unknown hypervisor', await post('/v1/hypervisors/nope/reset', { body: {} }, BALANCER_TOKENS.admin), 404, /no hypervisor named nope.*known: apib/],
  ];
  for (const [name, res, status, message] of cases) {
    t.is(res.status, status, `${name}: ${res.text}`);
    t.regex(res.body.error.message, message, name);
  }
  const wrongMethod = await httpCall(c.balancer.url, 'PUT', '/v1/leases', { token: BALANCER_TOKENS.lease });
  t.is(wrongMethod.status, 405);
  const nowhere = await httpCall(c.balancer.url, 'GET', '/v2/nothing', { token: BALANCER_TOKENS.lease });
  t.is(nowhere.status, 404);
  const ok = await post('/v1/leases', { body: { user: 'alice', publicKey: KEY } });
  t.is(ok.status, 200, 'still serving');
});

test('pools status aggregates every hypervisor; with one down it is reported down next to the others', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apic', standby: 2, max: 4 }, { name: 'apid', standby: 1, max: 3 }, { name: 'apie', standby: 1, max: 2 }] });
  const alice = userHomedAt(['apic', 'apid', 'apie'], 'apic', 'alice');
  const lease = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user: alice, publicKey: KEY } });
  t.is(lease.body.hypervisor, 'apic');
  await c.hypervisor('apic').daemon.pool.settled();
  await c.hypervisor('apie').stop();
  const res = await httpCall(c.balancer.url, 'GET', '/v1/pools', { token: BALANCER_TOKENS.admin });
  t.is(res.status, 200, res.text);
  const byName = Object.fromEntries((res.body.hypervisors as { name: string }[]).map((h) => [h.name, h])) as Record<string, any>;
  t.deepEqual(Object.keys(byName), ['apic', 'apid', 'apie']);
  t.like(byName.apic, { up: true, error: null, capacity: { clean: 2, leased: 1, building: 0, dirty: 0, broken: 0, max: 4, standby: 2 } });
  t.true(byName.apic.containers.some((x: { user: string | null; state: string; since: string }) => x.user === alice && x.state === 'leased' && !Number.isNaN(Date.parse(x.since))));
  t.like(byName.apid, { up: true, capacity: { clean: 1, leased: 0, max: 3 } });
  t.like(byName.apie, { up: false, capacity: null, containers: [], error: { code: 'E_HYPERVISOR_UNREACHABLE' } });
  t.truthy(byName.apie.lastSeen, 'when it was last seen');
  t.deepEqual(res.body.totals, { clean: 3, leased: 1, building: 0, dirty: 0, broken: 0, max: 7, standby: 3 });
  t.like(res.body, { up: 2, down: 1 });
});

test('sessions: who is on which container of which hypervisor since when; a hypervisor that cannot be asked is named', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apif', standby: 2, max: 4 }, { name: 'apig', standby: 2, max: 4 }] });
  // Homes on both: the lease of each goes to their home.
  const users = [userHomedAt(['apif', 'apig'], 'apig', 'bob'), userHomedAt(['apif', 'apig'], 'apif', 'alice'), 'carol'];
  for (const user of users) {
    const res = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user, publicKey: KEY } });
    t.is(res.status, 200);
  }
  const res = await httpCall(c.balancer.url, 'GET', '/v1/sessions', { token: BALANCER_TOKENS.admin });
  t.is(res.status, 200);
  const sessions = res.body.sessions as { user: string; hypervisor: string; container: string; grantedAt: string; loggedIn: boolean }[];
  t.deepEqual(sessions.map((s) => s.user), [...users].sort());
  t.deepEqual([...new Set(sessions.map((s) => s.hypervisor))].sort(), ['apif', 'apig'], 'spread over both');
  for (const s of sessions) {
    t.regex(s.container, new RegExp(`^${s.hypervisor}-\\d{4}$`));
    t.false(Number.isNaN(Date.parse(s.grantedAt)));
    t.false(s.loggedIn);
  }
  t.deepEqual(res.body.unavailable, []);
  await c.hypervisor('apig').stop();
  const partial = await httpCall(c.balancer.url, 'GET', '/v1/sessions', { token: BALANCER_TOKENS.admin });
  t.deepEqual((partial.body.sessions as { hypervisor: string }[]).map((s) => s.hypervisor), sessions.filter((s) => s.hypervisor === 'apif').map(() => 'apif'));
  t.like(partial.body.unavailable, [{ hypervisor: 'apig', error: { code: 'E_HYPERVISOR_UNREACHABLE' } }]);
});

test('reset fan-out: all pools, one hypervisor, one user; the down one is failed and the others done', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apih', standby: 2, max: 4 }, { name: 'apii', standby: 1, max: 4 }, { name: 'apij', standby: 1, max: 2 }] });
  const name = userHomedAt(['apih', 'apii', 'apij'], 'apih', 'alice');
  const alice = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user: name, publicKey: KEY } });
  t.is(alice.body.hypervisor, 'apih');
  // alice is logged in: without force her container is skipped, with force it is reset.
  (c.hypervisor('apih').driver as MemoryDriver).setSessions(alice.body.container, 1);
  await c.hypervisor('apih').daemon.pool.settled();
  await c.hypervisor('apij').stop();

  const all = await httpCall(c.balancer.url, 'POST', '/v1/reset', { token: BALANCER_TOKENS.admin, body: { wait: true } });
  t.is(all.status, 502, 'a part failed');
  t.false(all.body.ok);
  const results = Object.fromEntries((all.body.results as { hypervisor: string }[]).map((r) => [r.hypervisor, r])) as Record<string, any>;
  t.is(results.apih.status, 'done');
  t.is(results.apih.report.reset.length, 2, 'its two clean containers');
  t.like(results.apih.report.skipped, [{ container: alice.body.container, user: name }]);
  t.regex(results.apih.report.skipped[0].reason, /in use/);
  t.like(results.apii, { status: 'done', report: { reset: ['apii-0001'], failed: [] } });
  t.like(results.apij, { status: 'failed', error: { code: 'E_HYPERVISOR_UNREACHABLE' } });
  t.regex(results.apij.error.message, /apij: cannot reach/);
  const logged = await c.balancer.log.waitFor('reset.fanout', (r) => r.target === 'all');
  t.like(logged, { done: ['apih', 'apii'], failed: ['apij'] });

  const one = await httpCall(c.balancer.url, 'POST', '/v1/hypervisors/apii/reset', { token: BALANCER_TOKENS.admin, body: {} });
  t.is(one.status, 200, one.text);
  t.like(one.body, { ok: true, results: [{ hypervisor: 'apii', status: 'done' }] });
  t.is(one.body.results.length, 1);

  const user = await httpCall(c.balancer.url, 'POST', `/v1/users/${name}/reset`, { token: BALANCER_TOKENS.admin, body: { force: true, wait: true } });
  t.is(user.status, 200, user.text);
  t.true(user.body.ok, 'the holder reset it; the down one cannot hold it too');
  const byHyp = Object.fromEntries((user.body.results as { hypervisor: string; status: string }[]).map((r) => [r.hypervisor, r.status]));
  t.deepEqual(byHyp, { apih: 'done', apii: 'no-lease', apij: 'failed' });
  const leases = await httpCall(c.hypervisor('apih').url, 'GET', '/v1/leases', { token: c.hypervisor('apih').adminToken });
  t.deepEqual(leases.body.leases, [], 'alice\'s lease ended');

  const nobody = await httpCall(c.balancer.url, 'POST', '/v1/users/zed/reset', { token: BALANCER_TOKENS.admin, body: {} });
  t.is(nobody.status, 502, 'zed may hold a lease on the one that is down');
  t.like(nobody.body, { ok: false, error: { code: 'E_PARTIAL' } });
  await c.hypervisor('apih').stop();
  await c.hypervisor('apii').stop();
});

test('reset of a user nobody holds, with every hypervisor answering: 404 E_NO_LEASE with every result', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apik', standby: 1, max: 2 }, { name: 'apil', standby: 1, max: 2 }] });
  const res = await httpCall(c.balancer.url, 'POST', '/v1/users/nobody/reset', { token: BALANCER_TOKENS.admin, body: {} });
  t.is(res.status, 404);
  t.like(res.body, { ok: false, error: { code: 'E_NO_LEASE' }, results: [{ hypervisor: 'apik', status: 'no-lease' }, { hypervisor: 'apil', status: 'no-lease' }] });
});

test('the OpenAPI document lists exactly the routes the balancer serves, which are the contract\'s, and every answer has its shape', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'apia', standby: 1, max: 2 }] });
  // In this order: the lease is there to release, then gone (a 404 with every result for its user's reset).
  const statuses = await checkServedRoutes(t, {
    openapi: 'balancer.openapi.yaml',
    routes: balancerRoutes,
    endpoints: ENDPOINTS,
    concrete: (route) => route.replace('{user}', 'alice').replace('{name}', 'apia'),
    tokens: BALANCER_TOKENS,
    call: (method, path, options) => httpCall(c.balancer.url, method, path, options),
  });
  t.deepEqual(statuses, [200, 404]);
});
