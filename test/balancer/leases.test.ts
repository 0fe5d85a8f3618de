import test from 'ava';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { httpCall, startCluster, startTestBalancer, startTestHypervisor, userHomedAt, waitAllUp } from '../helpers/daemons.js';

const KEY = generateEd25519('gateway').publicKey;

test('a new lease goes to the user\'s home; a full home sends the user to the next choice and remembers it', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'hypa', standby: 1, max: 1 }, { name: 'hypb', standby: 3, max: 4 }] });
  const names = ['hypa', 'hypb'];
  const alice = userHomedAt(names, 'hypb', 'alice');
  const res = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: alice, publicKey: KEY } });
  t.is(res.status, 200, res.text);
  t.is(res.body.hypervisor, 'hypb');
  t.regex(res.body.container, /^hypb-\d{4}$/);
  for (const field of ['address', 'sshPort', 'hostKey', 'hostKeyFingerprint', 'user', 'grantedAt', 'ms', 'hit', 'renewed']) t.true(field in res.body, field);
  t.is((c.hypervisor('hypb').driver as MemoryDriver).authorizedKeyOf(res.body.container), KEY);
  const granted = await c.balancer.log.waitFor('lease.granted');
  t.like(granted, { user: alice, hypervisor: 'hypb', container: res.body.container, renewed: false });
  t.is(typeof granted.ms, 'number');

  // hypa has one container: its first user gets it, the next is placed on hypb by hypa itself.
  const [bob, dan] = [userHomedAt(names, 'hypa', 'bob'), userHomedAt(names, 'hypa', 'dan')];
  const first = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: bob, publicKey: KEY } });
  t.is(first.body.hypervisor, 'hypa', first.text);
  const spilled = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: dan, publicKey: KEY } });
  t.is(spilled.status, 200, spilled.text);
  t.is(spilled.body.hypervisor, 'hypb');
  const status = await httpCall(c.hypervisor('hypa').url, 'GET', `/v1/users/${dan}`, { token: c.hypervisor('hypa').adminToken });
  t.like(status.body, { container: null, claim: 'hypb' });
  // A balancer that never saw dan is sent to hypb by the home: the same container.
  const other = await startTestBalancer(t, c.hypervisors);
  const again = await httpCall(other.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: dan, publicKey: KEY } });
  t.like(again.body, { hypervisor: 'hypb', container: spilled.body.container, renewed: true });
});

test('a user who holds a lease goes back to its hypervisor, even through another balancer or a stale cache', async (t) => {
  const hyps = await Promise.all([
    startTestHypervisor(t, { name: 'hypc', standby: 2, max: 4 }),
    startTestHypervisor(t, { name: 'hypd', standby: 2, max: 4 }),
  ]);
  const one = await startTestBalancer(t, hyps);
  const two = await startTestBalancer(t, hyps);
  const lease = (b: { url: string }, user: string) => httpCall(b.url, 'POST', '/v1/leases', { token: one.tokens.lease, body: { user, publicKey: KEY } });

  const first = await lease(one, 'carol');
  t.is(first.status, 200, first.text);
  t.is(first.body.hypervisor, one.running.router.homeOf('carol'));
  const again = await lease(one, 'carol');
  t.is(again.body.hypervisor, first.body.hypervisor);
  t.is(again.body.container, first.body.container);
  t.true(again.body.renewed);
  // A balancer that never saw carol asks her home and finds the same container.
  const other = await lease(two, 'carol');
  t.like(other.body, { hypervisor: first.body.hypervisor, container: first.body.container, renewed: true });

  // Make balancer one's cache wrong: carol's lease ends at her hypervisor behind its back.
  const holder = hyps.find((h) => h.name === first.body.hypervisor)!;
  t.is((await httpCall(holder.url, 'DELETE', '/v1/leases/carol', { token: holder.token })).status, 200);
  await holder.daemon.pool.settled();
  t.is(one.running.router.cachedHolder('carol'), holder.name, 'the cache is stale now');
  const afterEnd = await lease(one, 'carol');
  t.like(afterEnd.body, { hypervisor: holder.name, renewed: false });
  // The hypervisors agree: one lease for carol.
  let held = 0;
  for (const h of hyps) held += ((await httpCall(h.url, 'GET', '/v1/leases', { token: h.adminToken })).body.leases as { user: string }[]).filter((l) => l.user === 'carol').length;
  t.is(held, 1);

  // Release through the balancer ends it where it is; a second release is 404.
  const released = await httpCall(two.url, 'DELETE', '/v1/leases/carol', { token: one.tokens.lease });
  t.is(released.status, 200, released.text);
  t.like(released.body, { user: 'carol', hypervisor: holder.name, container: afterEnd.body.container });
  const twice = await httpCall(one.url, 'DELETE', '/v1/leases/carol', { token: one.tokens.lease });
  t.is(twice.status, 404);
  t.is(twice.body.error.code, 'E_NO_LEASE');
});

test('a user whose home is stopped waits for it (E_HOLDER_DOWN), then gets a container elsewhere; others are not slowed', async (t) => {
  // Health polls far apart: the balancer finds out on the lease path, not from a poll.
  const c = await startCluster(t, {
    hypervisors: [{ name: 'hype', standby: 1, max: 4 }, { name: 'hypf', standby: 3, max: 4 }],
    balancer: { health: { intervalMs: 60_000, timeoutMs: 5000 }, lease: { deadlineMs: 30_000, attemptTimeoutMs: 20_000, lookupTimeoutMs: 10_000, holderWaitMs: 1500 } },
  });
  const names = ['hype', 'hypf'];
  const [dave, erin] = [userHomedAt(names, 'hypf', 'dave'), userHomedAt(names, 'hype', 'erin')];
  t.true(c.balancer.running.health.isUp('hypf'));
  await c.hypervisor('hypf').stop();
  const ask = (user: string) => httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user, publicKey: KEY } });
  const started = performance.now();
  const waiting = await ask(dave);
  t.is(waiting.status, 503, waiting.text);
  t.is(waiting.body.error.code, 'E_HOLDER_DOWN');
  t.is(waiting.headers.get('retry-after'), '1');
  t.true(performance.now() - started < 10_000, 'it answers at once, the gateway retries');
  const failover = await c.balancer.log.waitFor('lease.failover', (r) => r.hypervisor === 'hypf');
  t.like(failover, { code: 'E_HYPERVISOR_UNREACHABLE' });
  await c.balancer.log.waitFor('hypervisor.down', (r) => r.hypervisor === 'hypf');
  t.false(c.balancer.running.health.isUp('hypf'));
  // A user whose home is up is served at once, and the one that is down is not asked.
  const failoversBefore = c.balancer.log.records.filter((r) => r.event === 'lease.failover').length;
  const next = await ask(erin);
  t.is(next.status, 200, next.text);
  t.is(next.body.hypervisor, 'hype');
  t.is(c.balancer.log.records.filter((r) => r.event === 'lease.failover').length, failoversBefore);
  // Once hypf has been down for holderWaitMs, dave is given a container on hype, and told.
  let moved = await ask(dave);
  while (moved.status === 503 && moved.body.error.code === 'E_HOLDER_DOWN' && performance.now() - started < 20_000) {
    await new Promise((r) => setTimeout(r, 200));
    moved = await ask(dave);
  }
  t.is(moved.status, 200, moved.text);
  t.like(moved.body, { hypervisor: 'hype', movedFrom: 'hypf' });
  t.true(performance.now() - started >= 1500);
  const metrics = await httpCall(c.balancer.url, 'GET', '/metrics', { token: c.tokens.metrics });
  t.regex(metrics.text, /vzsb_balancer_hypervisor_up\{hypervisor="hypf"\} 0/);
  t.regex(metrics.text, /vzsb_balancer_hypervisor_up\{hypervisor="hype"\} 1/);
  t.regex(metrics.text, /vzsb_balancer_failovers_total\{hypervisor="hypf",code="E_HYPERVISOR_UNREACHABLE"\} 1/);
  t.regex(metrics.text, /vzsb_balancer_lease_duration_seconds_count\{outcome="granted"\} 2/);
});

test('a home that fails the lease (5xx) hands the user to the next choice at once', async (t) => {
  // Room on hypg (max 4): it does not send frank elsewhere itself, it fails.
  const c = await startCluster(t, { hypervisors: [{ name: 'hypg', standby: 2, max: 4 }, { name: 'hyph', standby: 1, max: 4 }] });
  const frank = userHomedAt(['hypg', 'hyph'], 'hypg', 'frank');
  const g = c.hypervisor('hypg').driver as MemoryDriver;
  // Every attempt of hypg's pool to authorize the key fails: it answers 503 E_LEASE_FAILED.
  for (let i = 0; i < 3; i++) g.failNext('authorizeKey');
  const res = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: frank, publicKey: KEY } });
  t.is(res.status, 200, res.text);
  t.like(res.body, { hypervisor: 'hyph', movedFrom: 'hypg' });
  const failover = await c.balancer.log.waitFor('lease.failover', (r) => r.stage === 'lease');
  t.like(failover, { hypervisor: 'hypg', code: 'E_LEASE_FAILED' });
  await c.balancer.log.waitFor('lease.granted', (r) => r.user === frank && r.attempts === 2);
  // hypg works again (it is up): the next health round tells it where frank is, and marks the lease settled.
  await c.balancer.log.waitFor('lease.settled', (r) => r.user === frank);
  const status = await httpCall(c.hypervisor('hypg').url, 'GET', `/v1/users/${frank}`, { token: c.hypervisor('hypg').adminToken });
  t.like(status.body, { container: null, claim: 'hyph' });
  const back = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: frank, publicKey: KEY } });
  t.like(back.body, { hypervisor: 'hyph', container: res.body.container, renewed: true });
});

test('when no hypervisor can serve: 503 with a clear code, within the deadline', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'hypi', standby: 1, max: 1 }] });
  const first = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: 'gina', publicKey: KEY } });
  t.is(first.status, 200);
  const full = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: 'hank', publicKey: KEY } });
  t.is(full.status, 503);
  t.is(full.body.error.code, 'E_POOL_FULL');
  t.regex(full.body.error.message, /hypi/);
  await c.hypervisor('hypi').stop();
  const none = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: 'hank', publicKey: KEY } });
  t.is(none.status, 503);
  t.is(none.body.error.code, 'E_NO_HYPERVISOR');
  t.regex(none.body.error.message, /hypi: .*ECONNREFUSED/);
  const release = await httpCall(c.balancer.url, 'DELETE', '/v1/leases/gina', { token: c.tokens.lease });
  t.is(release.status, 503);
  t.is(release.body.error.code, 'E_HYPERVISOR_UNREACHABLE');
});

test('a home that accepts connections and never answers costs at most one attempt\'s timeout, then the wait for it', async (t) => {
  const sockets = new Set<Socket>();
  const silent = createServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
  });
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    silent.close();
  });
  const port = (silent.address() as { port: number }).port;
  const good = await startTestHypervisor(t, { name: 'hypj', standby: 1, max: 2 });
  const hang = { name: 'hang', url: `http://127.0.0.1:${port}`, token: 'balancer-to-hang-0123456789abcdef' };
  const b = await startTestBalancer(t, [hang, good], { health: { intervalMs: 60_000, timeoutMs: 3000 }, lease: { deadlineMs: 30_000, attemptTimeoutMs: 3000, lookupTimeoutMs: 3000, holderWaitMs: 4000 } }, { waitUp: false });
  await waitAllUp(b.running, ['hypj']);
  t.false(b.running.health.isUp('hang'), 'its health polls time out');
  // Pretend a poll said it is up, so the lease path meets the silence itself.
  b.running.health.reportSuccess('hang');
  const ivan = userHomedAt(['hang', 'hypj'], 'hang', 'ivan');
  const started = performance.now();
  const res = await httpCall(b.url, 'POST', '/v1/leases', { token: b.tokens.lease, body: { user: ivan, publicKey: KEY } });
  const ms = performance.now() - started;
  t.is(res.status, 503, res.text);
  t.is(res.body.error.code, 'E_HOLDER_DOWN');
  // The attempt waited for it (3 s), far below the 30 s deadline (the upper bound is loose for loaded machines).
  t.true(ms >= 2900 && ms < 20_000, `took ${ms} ms`);
  t.like(await b.log.waitFor('lease.failover'), { hypervisor: 'hang', stage: 'lease', code: 'E_HYPERVISOR_TIMEOUT' });
  // Once it has been down for holderWaitMs, a request moves ivan to hypj without asking hang again.
  const ask = () => httpCall(b.url, 'POST', '/v1/leases', { token: b.tokens.lease, body: { user: ivan, publicKey: KEY } });
  let moved = await ask();
  while (moved.status === 503 && performance.now() - started < 20_000) moved = await ask();
  t.is(moved.status, 200, moved.text);
  t.is(b.log.records.filter((r) => r.event === 'lease.failover' && r.hypervisor === 'hang').length, 1);
  t.like(moved.body, { hypervisor: 'hypj', movedFrom: 'hang' });
});

test('20 concurrent leases for 20 users across two hypervisors are 20 distinct containers', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'hypk', standby: 6, max: 12, latencyMs: 2 }, { name: 'hypl', standby: 6, max: 12, latencyMs: 2 }] });
  const users = Array.from({ length: 20 }, (_, i) => `student${String(i + 1).padStart(2, '0')}`);
  const answers = await Promise.all(users.map((user) => httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user, publicKey: KEY } })));
  for (const a of answers) t.is(a.status, 200, a.text);
  const places = answers.map((a) => `${a.body.hypervisor}/${a.body.container}`);
  t.is(new Set(places).size, 20, places.join(' '));
  t.deepEqual(answers.map((a) => a.body.user), users);
  const perHyp = (name: string) => answers.filter((a) => a.body.hypervisor === name).length;
  t.true(perHyp('hypk') >= 8 && perHyp('hypl') >= 8, `hypk ${perHyp('hypk')}, hypl ${perHyp('hypl')}`);
  // And the hypervisors agree: each user holds exactly one lease, where the balancer said.
  const held = new Map<string, string>();
  for (const h of c.hypervisors) {
    const leases = await httpCall(h.url, 'GET', '/v1/leases', { token: h.adminToken });
    for (const l of leases.body.leases as { user: string; container: string }[]) {
      t.false(held.has(l.user), `${l.user} holds two leases`);
      held.set(l.user, `${h.name}/${l.container}`);
    }
  }
  t.deepEqual(users.map((u) => held.get(u)), places);
});

test('a hypervisor answering garbage is failed over and reported, and the balancer keeps serving', async (t) => {
  // Not a hypervisor: an HTTP server that answers /healthz like one and everything else wrongly.
  const broken = createHttpServer((req, res) => {
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', capacity: { clean: 9, leased: 0, building: 0, dirty: 0, broken: 0, max: 9, standby: 9 } }));
    } else if (req.url === '/v1/containers' || req.url?.startsWith('/v1/users/')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ capacity: 'lots', containers: null, container: 7 }));
    } else {
      res.writeHead(200, { 'content-type': 'text/html' });
      res.end('<html>hello</html>');
    }
  });
  await new Promise<void>((r) => broken.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => broken.close(() => r())));
  const good = await startTestHypervisor(t, { name: 'hypm', standby: 1, max: 2 });
  const junk = { name: 'junk', url: `http://127.0.0.1:${(broken.address() as { port: number }).port}`, token: 'balancer-to-junk-0123456789abcdef' };
  const b = await startTestBalancer(t, [junk, good]);
  // judy's home is junk: it answers, wrongly, so she is placed on hypm at once.
  const res = await httpCall(b.url, 'POST', '/v1/leases', { token: b.tokens.lease, body: { user: userHomedAt(['junk', 'hypm'], 'junk', 'judy'), publicKey: KEY } });
  t.is(res.status, 200, res.text);
  t.is(res.body.hypervisor, 'hypm');
  const failover = await b.log.waitFor('lease.failover', (r) => r.hypervisor === 'junk');
  t.like(failover, { stage: 'lease', code: 'E_HYPERVISOR_BAD_RESPONSE' });
  const pools = await httpCall(b.url, 'GET', '/v1/pools', { token: b.tokens.admin });
  t.like(pools.body.hypervisors[0], { name: 'junk', up: false, error: { code: 'E_HYPERVISOR_BAD_RESPONSE' } });
  const reset = await httpCall(b.url, 'POST', '/v1/reset', { token: b.tokens.admin, body: {} });
  t.is(reset.status, 502);
  t.like(reset.body.results, [{ hypervisor: 'junk', status: 'failed', error: { code: 'E_HYPERVISOR_BAD_RESPONSE' } }, { hypervisor: 'hypm', status: 'done' }]);
  t.is((await httpCall(b.url, 'GET', '/healthz')).status, 200);
});
