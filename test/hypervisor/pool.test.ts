import test from 'ava';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/common/log.js';
import { ManualClock } from '../../src/daemons/common/clock.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { poolConfigSchema, type PoolConfig } from '../../src/daemons/hypervisor/config.js';
import { startJobs } from '../../src/daemons/hypervisor/jobs.js';
import { LeaseStore, type StoredState } from '../../src/daemons/hypervisor/lease-store.js';
import { Pool } from '../../src/daemons/hypervisor/pool.js';

const KEY = generateEd25519('student').publicKey;

interface Setup {
  pool: Pool;
  driver: MemoryDriver;
  clock: ManualClock;
  store: LeaseStore;
  dir: string;
}

async function setup(
  t: { teardown(fn: () => Promise<void>): void },
  pool: Partial<PoolConfig> & { standby: number; max: number },
  opts: { driver?: MemoryDriver; dir?: string; clock?: ManualClock; start?: boolean } = {},
): Promise<Setup> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'vzsb-pool-')));
  const driver = opts.driver ?? new MemoryDriver();
  const clock = opts.clock ?? new ManualClock();
  const store = new LeaseStore(dir);
  // Background work may outlive the test (or hang in a crashed driver): it must not write any more.
  t.teardown(async () => {
    store.close();
    await store.flushed();
    await rm(dir, { recursive: true, force: true });
  });
  const config = poolConfigSchema.parse(pool);
  const p = new Pool({ driver, store, clock, logger: silentLogger, config, prefix: 'vzsb-' });
  if (opts.start !== false) {
    await p.start();
    await p.settled();
  }
  return { pool: p, driver, clock, store, dir };
}

async function saved(store: LeaseStore): Promise<StoredState> {
  const s = await store.load();
  if (!s) throw new Error('no state saved');
  return s;
}

test('start fills the pool to standby with the lowest numbers and never exceeds max', async (t) => {
  const { pool, driver } = await setup(t, { standby: 3, max: 4 });
  t.deepEqual(pool.capacity(), { clean: 3, leased: 0, building: 0, dirty: 0, broken: 0, max: 4, standby: 3 });
  t.deepEqual((await driver.list()).map((c) => c.id).sort(), ['vzsb-0001', 'vzsb-0002', 'vzsb-0003']);
  t.true((await driver.list()).every((c) => c.running));
  await pool.lease('alice', KEY);
  await pool.lease('bob', KEY);
  await pool.settled();
  // 2 leased, standby wants 3 clean but max is 4.
  t.is(pool.capacity().leased + pool.capacity().clean, 4);
  t.is((await driver.list()).length, 4);
  await t.throwsAsync(Promise.all(['carol', 'dave', 'erin'].map((u) => pool.lease(u, KEY))), { message: /no container is free/ });
  t.is((await driver.list()).length, 4);
  t.deepEqual(driver.violations, []);
});

test('a lease is on disk before it is returned, with the key authorized and the host key reported', async (t) => {
  const { pool, driver, store } = await setup(t, { standby: 1, max: 2 });
  const lease = await pool.lease('alice', KEY);
  t.is(lease.container, 'vzsb-0001');
  t.true(lease.hit);
  t.is(driver.authorizedKeyOf(lease.container), KEY);
  t.is(lease.hostKey, (await driver.hostKey(lease.container)).publicKey);
  t.regex(lease.hostKeyFingerprint, /^SHA256:[A-Za-z0-9+/]{43}$/);
  t.is(lease.address, '198.18.0.1');
  const rec = (await saved(store)).containers.find((c) => c.id === lease.container);
  t.is(rec?.state, 'leased');
  t.is(rec?.user, 'alice');
});

test('the same user gets the same container and the new key replaces the old one', async (t) => {
  const { pool, driver } = await setup(t, { standby: 2, max: 3 });
  const first = await pool.lease('alice', KEY);
  const key2 = generateEd25519().publicKey;
  const second = await pool.lease('alice', key2);
  t.is(second.container, first.container);
  t.true(second.renewed);
  t.is(second.grantedAt, first.grantedAt);
  t.is(driver.authorizedKeyOf(first.container), key2);
  const concurrent = await Promise.all([1, 2, 3, 4].map(() => pool.lease('bob', KEY)));
  t.is(new Set(concurrent.map((l) => l.container)).size, 1);
  t.not(concurrent[0]!.container, first.container);
});

test('release resets at once: a new clone (fresh host key, student files gone) back in the pool', async (t) => {
  const { pool, driver } = await setup(t, { standby: 1, max: 1 });
  const lease = await pool.lease('alice', KEY);
  driver.writeFile(lease.container, '/root/homework.txt', 'mine');
  const released = await pool.release('alice');
  t.is(released.graceUntil, null);
  t.is(pool.containers()[0]?.state === 'dirty' || pool.containers()[0]?.state === 'building', true);
  await pool.settled();
  t.is(pool.capacity().clean, 1);
  const exec = await driver.exec(lease.container, ['cat', '/root/homework.txt']);
  t.is(exec.exitCode, 1);
  t.not((await driver.hostKey(lease.container)).publicKey, lease.hostKey);
  t.is(driver.authorizedKeyOf(lease.container), undefined);
  const again = await pool.lease('bob', KEY);
  t.is(again.container, lease.container);
  await t.throwsAsync(pool.release('alice'), { message: /holds no lease/ });
});

test('grace: a re-login within the grace period gets the same container; after it, a reset', async (t) => {
  const { pool, clock } = await setup(t, { standby: 1, max: 3, graceSeconds: 60 });
  const lease = await pool.lease('alice', KEY);
  const rel = await pool.release('alice');
  t.is(rel.graceUntil, new Date(clock.now() + 60_000).toISOString());
  clock.advance(30);
  await pool.reclaim();
  t.is(pool.leases()[0]?.user, 'alice');
  const again = await pool.lease('alice', KEY);
  t.is(again.container, lease.container);
  t.is(pool.leases()[0]?.releasedAt, null);
  await pool.release('alice');
  clock.advance(59);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  clock.advance(1);
  t.deepEqual((await pool.reclaim()).reclaimed, [{ user: 'alice', container: lease.container, reason: 'released' }]);
  await pool.settled();
  t.deepEqual(pool.leases(), []);
  t.is(pool.capacity().leased, 0);
  t.is(pool.capacity().dirty + pool.capacity().building, 0);
});

test('grace: a release while another terminal still has a session keeps the lease', async (t) => {
  const { pool, clock, driver } = await setup(t, { standby: 1, max: 2, graceSeconds: 10, idleSeconds: 100 });
  const lease = await pool.lease('alice', KEY);
  driver.setSessions(lease.container, 1);
  await pool.release('alice');
  clock.advance(11);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  t.is(pool.leases()[0]?.releasedAt, null);
  driver.setSessions(lease.container, 0);
  clock.advance(99);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  clock.advance(1);
  t.deepEqual((await pool.reclaim()).reclaimed, [{ user: 'alice', container: lease.container, reason: 'idle' }]);
});

test('idle reclaim counts from the last time a session was seen; never-used leases are bounded too', async (t) => {
  const { pool, clock, driver } = await setup(t, { standby: 2, max: 3, idleSeconds: 600, loginSeconds: 120 });
  const a = await pool.lease('alice', KEY);
  const b = await pool.lease('bob', KEY);
  driver.setSessions(a.container, 2);
  clock.advance(119);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  clock.advance(1);
  t.deepEqual((await pool.reclaim()).reclaimed, [{ user: 'bob', container: b.container, reason: 'never-used' }]);
  clock.advance(1000);
  await pool.reclaim();
  t.is(pool.leases()[0]?.user, 'alice');
  t.true(pool.leases()[0]?.loggedIn);
  driver.setSessions(a.container, 0);
  clock.advance(599);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  clock.advance(1);
  t.deepEqual((await pool.reclaim()).reclaimed, [{ user: 'alice', container: a.container, reason: 'idle' }]);
  await pool.settled();
  t.is(pool.capacity().clean, 3);
});

test('the hard session limit ends a lease even with a live session', async (t) => {
  const { pool, clock, driver } = await setup(t, { standby: 1, max: 2, idleSeconds: 600, maxSessionSeconds: 3600 });
  const a = await pool.lease('alice', KEY);
  driver.setSessions(a.container, 1);
  clock.advance(3599);
  t.deepEqual((await pool.reclaim()).reclaimed, []);
  await pool.lease('alice', KEY); // a second terminal does not extend the limit
  clock.advance(1);
  t.deepEqual((await pool.reclaim()).reclaimed, [{ user: 'alice', container: a.container, reason: 'session-limit' }]);
});

test('a miss builds a container when below max; at max the refusal is E_POOL_FULL', async (t) => {
  const { pool } = await setup(t, { standby: 0, max: 2 });
  t.is(pool.capacity().clean, 0);
  const a = await pool.lease('alice', KEY);
  t.false(a.hit);
  t.is(a.container, 'vzsb-0001');
  const b = await pool.lease('bob', KEY);
  t.is(b.container, 'vzsb-0002');
  const err = await t.throwsAsync(pool.lease('carol', KEY));
  t.is((err as { code?: string }).code, 'E_POOL_FULL');
});

test('30 concurrent leases for 30 users get 30 distinct containers, each driver call serialized per container', async (t) => {
  const driver = new MemoryDriver({ latencyMs: 2 });
  const { pool, store } = await setup(t, { standby: 5, max: 30 }, { driver });
  const users = Array.from({ length: 30 }, (_, i) => `student${i + 1}`);
  const leases = await Promise.all(users.map((u) => pool.lease(u, KEY)));
  t.is(new Set(leases.map((l) => l.container)).size, 30);
  t.is(new Set(leases.map((l) => l.address)).size, 30);
  t.deepEqual(leases.map((l) => l.user), users);
  t.is(leases.filter((l) => l.hit).length >= 5, true);
  t.deepEqual(driver.violations, []);
  const onDisk = (await saved(store)).containers.filter((c) => c.state === 'leased');
  t.is(onDisk.length, 30);
  t.is(new Set(onDisk.map((c) => c.user)).size, 30);
  // Releases and re-leases interleaved: still no container in two hands.
  const churn = await Promise.all(users.map(async (u, i) => (i % 2 ? pool.release(u).then(() => pool.lease(u + 'b', KEY)) : pool.lease(u, KEY))));
  t.truthy(churn);
  await pool.settled();
  const holders = new Map<string, string>();
  for (const l of pool.leases()) {
    t.false(holders.has(l.container), `${l.container} held twice`);
    holders.set(l.container, l.user);
  }
  t.deepEqual(driver.violations, []);
});

test('ids take the lowest free number', async (t) => {
  const { pool, driver } = await setup(t, { standby: 0, max: 5 });
  await Promise.all(['a1', 'a2', 'a3'].map((u) => pool.lease(u, KEY)));
  driver.failNext('destroy', 'vzsb-0002');
  driver.failNext('destroy', 'vzsb-0002');
  await pool.resetUser('a2', { force: true, wait: true });
  t.is(pool.containers()[1]?.state, 'broken');
  t.deepEqual((await pool.reclaim()).repaired, ['vzsb-0002']);
  t.deepEqual(pool.containers().map((c) => c.id), ['vzsb-0001', 'vzsb-0003']);
  const next = await pool.lease('b1', KEY);
  t.is(next.container, 'vzsb-0002');
  t.false(next.hit);
  t.is((await pool.lease('b2', KEY)).container, 'vzsb-0004');
});

test('admin reset: an in-use container only with force; a clean one is rebuilt', async (t) => {
  const { pool, driver } = await setup(t, { standby: 2, max: 3 });
  const a = await pool.lease('alice', KEY);
  driver.setSessions(a.container, 1);
  const err = await t.throwsAsync(pool.resetContainer(a.container));
  t.is((err as { code?: string }).code, 'E_IN_USE');
  const all = await pool.resetAll({ wait: true });
  t.deepEqual(all.skipped.map((s) => s.container), [a.container]);
  t.is(all.reset.length, 2);
  t.is(pool.leases().length, 1);
  const forced = await pool.resetUser('alice', { force: true, wait: true });
  t.deepEqual(forced.reset, [a.container]);
  t.deepEqual(pool.leases(), []);
  await pool.settled();
  t.is(pool.capacity().clean, 3);
  const e2 = await t.throwsAsync(pool.resetContainer('vzsb-0099'));
  t.is((e2 as { code?: string }).code, 'E_NOT_FOUND');
});

test('a failed build leaves no half-made container, and a failing lease step moves the user elsewhere', async (t) => {
  const { pool, driver } = await setup(t, { standby: 1, max: 3 });
  driver.failNext('start');
  pool.setStandby(2);
  await pool.settled();
  t.is(pool.capacity().broken, 0);
  t.is(pool.capacity().clean, 1, 'the failed build is not retried in a loop');
  await pool.reclaim(); // the job's next pass refills
  t.is(pool.capacity().clean, 2);
  t.deepEqual((await driver.list()).map((c) => c.id).sort(), pool.containers().map((c) => c.id));
  driver.failNext('authorizeKey', 'vzsb-0001');
  const lease = await pool.lease('alice', KEY);
  t.not(lease.container, 'vzsb-0001');
  await pool.settled();
  t.is(pool.leases().length, 1);
  t.deepEqual(driver.violations, []);
});

test('a container that cannot be destroyed is broken until the reclaim job repairs it', async (t) => {
  const { pool, driver } = await setup(t, { standby: 1, max: 2 });
  await pool.lease('alice', KEY);
  driver.failNext('destroy');
  driver.failNext('destroy');
  await pool.release('alice');
  await pool.settled();
  t.is(pool.capacity().broken, 1);
  const report = await pool.reclaim();
  t.deepEqual(report.repaired, ['vzsb-0001']);
  await pool.settled();
  t.is(pool.capacity().broken, 0);
  t.is(pool.capacity().clean, 1);
});

test('restart: reconcile the state file with the driver list', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const driver = new MemoryDriver();
  for (const id of ['vzsb-0001', 'vzsb-0002', 'vzsb-0003', 'vzsb-0004', 'vzsb-0005', 'vzsb-0009']) {
    await driver.create(id);
    await driver.start(id);
  }
  await driver.stop('vzsb-0005');
  await driver.authorizeKey('vzsb-0001', KEY);
  const now = Date.UTC(2026, 10, 28, 9);
  const state: StoredState = {
    version: 1,
    savedAt: now,
    containers: [
      { id: 'vzsb-0001', state: 'leased', since: now, user: 'alice', grantedAt: now, lastActiveAt: now, loggedIn: true },
      { id: 'vzsb-0002', state: 'clean', since: now },
      { id: 'vzsb-0003', state: 'building', since: now },
      { id: 'vzsb-0004', state: 'dirty', since: now, lastUser: 'bob' },
      { id: 'vzsb-0005', state: 'leased', since: now, user: 'erin', grantedAt: now },
      { id: 'vzsb-0007', state: 'leased', since: now, user: 'carol', grantedAt: now },
      { id: 'vzsb-0008', state: 'clean', since: now },
    ],
  };
  await writeFile(join(dir, 'state.json'), JSON.stringify(state));
  const { pool, store } = await setup(t, { standby: 2, max: 10 }, { driver, dir, start: false, clock: new ManualClock(now) });
  const report = await pool.start();
  t.deepEqual(report.leasesKept.sort(), ['alice', 'erin']);
  t.deepEqual(report.leasesLost, ['carol']);
  t.deepEqual(report.recordsDropped.sort(), ['vzsb-0007', 'vzsb-0008']);
  t.deepEqual(report.orphansDestroyed, ['vzsb-0009']);
  t.deepEqual(report.rebuilt.sort(), ['vzsb-0003', 'vzsb-0004']);
  t.deepEqual(report.kept, ['vzsb-0002']);
  await pool.settled();
  t.false(driver.has('vzsb-0009'));
  t.true((await driver.list()).find((c) => c.id === 'vzsb-0005')?.running);
  t.is(driver.authorizedKeyOf('vzsb-0001'), KEY, 'a kept lease keeps its container untouched');
  // Alice logs in again: same container.
  t.is((await pool.lease('alice', KEY)).container, 'vzsb-0001');
  t.deepEqual(pool.leases().map((l) => l.user), ['alice', 'erin']);
  t.is(pool.capacity().clean, 3);
  const onDisk = await saved(store);
  t.deepEqual(onDisk.containers.map((c) => c.id).sort(), (await driver.list()).map((c) => c.id).sort());
});

test('adopt mode: an orphan becomes dirty and is reset instead of destroyed', async (t) => {
  const driver = new MemoryDriver();
  await driver.create('vzsb-0004');
  const { pool } = await setup(t, { standby: 0, max: 5, orphans: 'adopt' }, { driver });
  t.deepEqual(pool.containers().map((c) => [c.id, c.state]), [['vzsb-0004', 'clean']]);
});

test('crash in the middle of a build: the next start destroys the half-made container and rebuilds', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const driver = new MemoryDriver();
  const crashed = driver.crashAt('create');
  const first = await setup(t, { standby: 2, max: 4 }, { driver, dir, start: false });
  void first.pool.start();
  const id = await crashed; // the first daemon dies inside create
  await first.store.flushed();
  const onDisk = await first.store.load();
  t.is(onDisk?.containers.find((c) => c.id === id)?.state, 'building');
  t.true(driver.has(id), 'a half-made container is left behind');
  const second = await setup(t, { standby: 2, max: 4 }, { driver: driver.reopen(), dir });
  t.is(second.pool.capacity().clean, 2);
  t.is(second.pool.capacity().building, 0);
  const ids = (await second.driver.list()).map((c) => c.id).sort();
  t.deepEqual(ids, second.pool.containers().map((c) => c.id));
  t.deepEqual(driver.violations, []);
});

test('crash between persisting a lease and returning it: the lease survives for its user only', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-pool-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const driver = new MemoryDriver();
  const first = await setup(t, { standby: 3, max: 3 }, { driver, dir });
  const bob = await first.pool.lease('bob', KEY);
  const crashed = driver.crashAt('authorizeKey');
  void first.pool.lease('alice', KEY);
  const id = await crashed;
  await first.store.flushed();
  const rec = (await saved(first.store)).containers.find((c) => c.id === id);
  t.is(rec?.user, 'alice');

  const second = await setup(t, { standby: 3, max: 3 }, { driver: driver.reopen(), dir });
  const others = await Promise.all([second.pool.lease('carol', KEY), second.pool.lease('bob', KEY)]);
  t.false(others.some((l) => l.container === id), 'nobody else gets alice\'s container');
  t.is(others[1]!.container, bob.container);
  const alice = await second.pool.lease('alice', KEY);
  t.is(alice.container, id);
  t.is(new Set([alice, ...others].map((l) => l.container)).size, 3);
});

test('the state file is replaced atomically and coalesces concurrent saves', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-store-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const store = new LeaseStore(dir);
  let n = 0;
  const snap = (): StoredState => ({ version: 1, savedAt: ++n, containers: [] });
  await Promise.all(Array.from({ length: 20 }, () => store.save(snap)));
  t.true(store.writes <= 2, `20 concurrent saves took ${store.writes} writes`);
  t.is((await saved(store)).savedAt, n);
  await writeFile(join(dir, 'state.json'), '{"version":1,"savedAt":1,"containers":[{"id":"x","state":"gone","since":1}]}');
  await t.throwsAsync(store.load(), { message: /containers\[0\]\.state/ });
  await writeFile(join(dir, 'state.json'), '{not json');
  await t.throwsAsync(store.load(), { message: /not valid JSON/ });
  const leftovers = (await readdir(dir)).filter((f) => f.includes('.tmp'));
  t.deepEqual(leftovers, []);
});

test('jobs: the standby schedule changes the target; a reclaim asked for during a pass shares it; a bad cron names its entry', async (t) => {
  const { pool, driver } = await setup(t, { standby: 1, max: 6 });
  const config = poolConfigSchema.parse({
    standby: 1,
    max: 6,
    checkSeconds: 30,
    schedule: [
      { cron: '50 8 * * 1-5', standby: 4 },
      { cron: '0 13 * * 1-5', standby: 0 },
    ],
  });
  const jobs = startJobs(pool, config, silentLogger);
  t.teardown(() => jobs.stop());
  const next = jobs.standbyJobs[0]!.nextInvocation() as unknown as Date;
  t.is(next.getHours(), 8);
  t.is(next.getMinutes(), 50);
  t.true(next.getDay() >= 1 && next.getDay() <= 5);
  jobs.standbyJobs[0]!.invoke();
  await pool.settled();
  t.is(pool.capacity().standby, 4);
  t.is(pool.capacity().clean, 4);
  t.is((await driver.list()).length, 4);
  jobs.standbyJobs[1]!.invoke();
  t.is(pool.capacity().standby, 0);
  const [a, b] = [jobs.runReclaim(), jobs.runReclaim()];
  t.is(a, b);
  t.is((await a).kept, 0);
  const bad = poolConfigSchema.parse({ standby: 1, max: 2, schedule: [{ cron: '61 25 * * * *', standby: 1 }] });
  t.throws(() => startJobs(pool, bad, silentLogger), { message: /pool\.schedule\[0\]\.cron/ });
});

test('at max, a lease waits for a container being reset instead of failing', async (t) => {
  const driver = new MemoryDriver({ latencyMs: 3 });
  const { pool } = await setup(t, { standby: 1, max: 1 }, { driver });
  const a = await pool.lease('alice', KEY);
  await pool.release('alice');
  t.not(pool.capacity().clean, 1, 'the reset is still running');
  const b = await pool.lease('bob', KEY);
  t.is(b.container, a.container);
  t.false(b.hit);
  t.not(b.hostKey, a.hostKey);
  const err = await t.throwsAsync(pool.lease('carol', KEY));
  t.is((err as { code?: string }).code, 'E_POOL_FULL', 'nothing is coming: refused at once');
});

test('a lease carries its maximum-session deadline (8 hours by default); "none" opts out, 0 is refused', async (t) => {
  const { pool, clock } = await setup(t, { standby: 1, max: 2 });
  const a = await pool.lease('alice', KEY);
  t.is(a.secondsLeft, 8 * 3600);
  t.is(a.expiresAt, new Date(Date.parse(a.grantedAt) + 8 * 3600 * 1000).toISOString());
  clock.advance(600);
  const again = await pool.lease('alice', KEY); // a second terminal: the same deadline, closer
  t.is(again.expiresAt, a.expiresAt);
  t.is(again.secondsLeft, 8 * 3600 - 600);
  const open = await setup(t, { standby: 1, max: 2, maxSessionSeconds: 'none' });
  const b = await open.pool.lease('bob', KEY);
  t.is(b.expiresAt, null);
  t.is(b.secondsLeft, null);
  open.clock.advance(365 * 24 * 3600);
  t.deepEqual((await open.pool.reclaim()).reclaimed, [{ user: 'bob', container: b.container, reason: 'never-used' }]);
  t.throws(() => poolConfigSchema.parse({ standby: 1, max: 2, maxSessionSeconds: 0 }), { message: /positive number of seconds, or .*none/ });
});
