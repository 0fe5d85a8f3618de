import test, { type ExecutionContext } from 'ava';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger } from '../../src/common/log.js';
import { ManualClock } from '../../src/daemons/common/clock.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { poolConfigSchema } from '../../src/daemons/hypervisor/config.js';
import { LeaseStore } from '../../src/daemons/hypervisor/lease-store.js';
import { Pool } from '../../src/daemons/hypervisor/pool.js';

/**
 * Storage faults of the hypervisor's pool, on the memory driver: a disk error is injected at
 * the state store's write hook (the real read-only directory is in test/hypervisor/faults-lxc.test.ts).
 */
const KEY = generateEd25519('student').publicKey;

interface Rig {
  pool: Pool;
  driver: MemoryDriver;
  store: LeaseStore;
  dir: string;
  clock: ManualClock;
  logs: { event: string; [k: string]: unknown }[];
  /** While set, every state write fails with this errno. */
  fault: { code: string | undefined };
}

async function rig(t: ExecutionContext, opts: { dir?: string; driver?: MemoryDriver; clock?: ManualClock; standby?: number; max?: number } = {}): Promise<Rig> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'vzsb-faults-')));
  const fault: { code: string | undefined } = { code: undefined };
  const store = new LeaseStore(dir, {
    retryMs: 10,
    maxRetryMs: 40,
    beforeWrite: () => {
      if (fault.code) throw Object.assign(new Error(`${fault.code}: injected`), { code: fault.code });
    },
  });
  const logs: Rig['logs'] = [];
  const logger = createLogger({ level: 'debug', write: (l) => logs.push(JSON.parse(l)) });
  const driver = opts.driver ?? new MemoryDriver();
  const clock = opts.clock ?? new ManualClock();
  const pool = new Pool({ driver, store, clock, logger, config: poolConfigSchema.parse({ standby: opts.standby ?? 2, max: opts.max ?? 4 }), prefix: 'vzsb-' });
  t.teardown(async () => {
    await pool.stop();
    store.close();
    await store.flushed();
    if (!opts.dir) await rm(dir, { recursive: true, force: true });
  });
  await pool.start();
  await pool.settled();
  return { pool, driver, store, dir, clock, logs, fault };
}

async function until(cond: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const destroys = (d: MemoryDriver) => d.calls.filter((c) => c.startsWith('destroy '));

test('while the state cannot be written: renewals and releases go on, new leases are refused, nothing is destroyed; then it recovers by itself', async (t) => {
  const r = await rig(t, { standby: 2, max: 4 });
  const alice = await r.pool.lease('alice', KEY);
  const bob = await r.pool.lease('bob', KEY);
  await r.pool.settled();
  const before = destroys(r.driver).length;
  r.fault.code = 'EROFS';

  // The first failing write is a release; it is answered and kept in memory.
  const released = await r.pool.release('bob');
  t.is(released.container, bob.container);
  t.false(r.pool.storeHealth().writable);
  t.regex(r.pool.storeHealth().error ?? '', /EROFS/);

  const renewed = await r.pool.lease('alice', KEY);
  t.true(renewed.renewed);
  t.is(renewed.container, alice.container);
  await t.throwsAsync(r.pool.lease('carol', KEY), { code: 'E_STATE_UNWRITABLE' } as never);
  await r.pool.reclaim();
  await r.pool.settled();
  t.is(destroys(r.driver).length, before, 'no container destroyed or reset while the disk fails');
  t.true(r.driver.has(bob.container), 'the released container waits for its reset');
  t.deepEqual(r.pool.leases().map((l) => l.user), ['alice']);
  t.true(r.logs.some((l) => l.event === 'state.unwritable'));

  r.fault.code = undefined;
  await until(() => r.pool.storeHealth().writable, 5000, 'the store recovers');
  await until(async () => {
    const s = await r.store.load();
    return s?.containers.find((c) => c.id === bob.container)?.state !== 'leased';
  }, 5000, 'the release written once the disk takes it');
  await r.pool.settled();
  await until(() => r.pool.capacity().dirty === 0 && r.pool.capacity().building === 0, 5000, 'the released container reset after recovery');
  t.is((await r.pool.lease('carol', KEY)).renewed, false);
  t.true(r.logs.some((l) => l.event === 'state.writable'));
  t.deepEqual(r.driver.violations, []);
});

test('a lease record that cannot be written refuses the new lease and gives the container back clean', async (t) => {
  const r = await rig(t, { standby: 1, max: 2 });
  r.driver.failLeaseRecords('ENOSPC');
  await t.throwsAsync(r.pool.lease('alice', KEY), { code: 'E_STATE_UNWRITABLE' } as never);
  t.is(r.pool.capacity().clean, 1);
  t.is(r.pool.capacity().leased, 0);
  t.deepEqual(destroys(r.driver), []);
  r.driver.failLeaseRecords(undefined);
  const lease = await r.pool.lease('alice', KEY);
  t.like(r.driver.leaseRecordOf(lease.container), { state: 'leased', user: 'alice', container: lease.container });
});

test('a truncated state file: the daemon starts from the previous one and the containers records, leased ones stay leased', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const driver = new MemoryDriver();
  const clock = new ManualClock();
  const first = await rig(t, { dir, driver, clock, standby: 2, max: 6 });
  const alice = await first.pool.lease('alice', KEY);
  clock.advance(1);
  const bob = await first.pool.lease('bob', KEY);
  await first.pool.settled();
  await first.pool.stop();
  first.store.close();
  await first.store.flushed();
  t.true(existsSync(join(dir, 'state.prev.json')), 'the last good state is kept beside the current one');

  await writeFile(join(dir, 'state.json'), (await readFile(join(dir, 'state.json'), 'utf8')).slice(0, 40));
  const second = await rig(t, { dir, driver: driver.reopen(), clock, standby: 2, max: 6 });
  t.deepEqual(second.pool.leases().map((l) => [l.user, l.container]), [['alice', alice.container], ['bob', bob.container]]);
  t.true(existsSync(join(dir, 'state.damaged.json')), 'the damaged file is kept for the operator');
  const damaged = second.logs.find((l) => l.event === 'state.damaged');
  t.truthy(damaged);
  t.is(damaged?.using, 'previous');
  t.true(second.logs.some((l) => l.event === 'state.rebuilt'));
  t.is((await second.pool.lease('alice', KEY)).container, alice.container);
  await second.pool.stop();
  second.store.close();
  await second.store.flushed();

  // Both files gone: the containers' own records alone keep the leases.
  await unlink(join(dir, 'state.json'));
  await unlink(join(dir, 'state.prev.json'));
  const third = await rig(t, { dir, driver: driver.reopen(), clock, standby: 2, max: 6 });
  t.deepEqual(third.pool.leases().map((l) => l.user), ['alice', 'bob']);
  t.is((await third.pool.lease('bob', KEY)).container, bob.container);
});

test('a release kept only in memory when the daemon died: the container record, newer than the file, ends the lease', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-faults-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const driver = new MemoryDriver();
  const clock = new ManualClock();
  const first = await rig(t, { dir, driver, clock, standby: 1, max: 4 });
  const alice = await first.pool.lease('alice', KEY);
  first.fault.code = 'ENOSPC';
  clock.advance(5);
  await first.pool.release('alice');
  await first.pool.settled();
  // Crash: the state file still says leased.
  first.store.close();
  t.is((await first.store.load())?.containers.find((c) => c.id === alice.container)?.state, 'leased');
  const second = await rig(t, { dir, driver: driver.reopen(), clock, standby: 1, max: 4 });
  t.deepEqual(second.pool.leases(), []);
  t.true(second.logs.some((l) => l.event === 'state.from_record' && l.container === alice.container));
});
