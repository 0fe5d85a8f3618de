import test from 'ava';
import { silentLogger } from '../../src/common/log.js';
import { ManualClock } from '../../src/daemons/common/clock.js';
import { KeyedMutex } from '../../src/daemons/common/keyed-mutex.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import type { HostKey } from '../../src/daemons/drivers/types.js';
import { BuildQueue } from '../../src/daemons/hypervisor/build-queue.js';
import { ContainerTable } from '../../src/daemons/hypervisor/container-table.js';
import { LeaseRecords } from '../../src/daemons/hypervisor/lease-records.js';

interface Setup {
  queue: BuildQueue;
  table: ContainerTable;
  driver: MemoryDriver;
  hostKeys: Map<string, HostKey>;
  state: { writable: boolean; stopping: boolean; saves: number; resets: boolean[] };
  settled(): Promise<void>;
}

function setup(opts: { concurrency?: number; standby?: number; max?: number; latencyMs?: number } = {}): Setup {
  const driver = new MemoryDriver({ latencyMs: opts.latencyMs ?? 0 });
  const clock = new ManualClock();
  const max = opts.max ?? 10;
  const table = new ContainerTable('vzsb-', max);
  const hostKeys = new Map<string, HostKey>();
  const state = { writable: true, stopping: false, saves: 0, resets: [] as boolean[] };
  const background = new Set<Promise<unknown>>();
  const queue = new BuildQueue({
    table,
    driver,
    containerLock: new KeyedMutex(),
    leaseRecords: new LeaseRecords(driver, () => clock.now()),
    hostKeys,
    clock,
    log: silentLogger,
    observer: { resetDone: (ok) => state.resets.push(ok) },
    concurrency: opts.concurrency ?? 2,
    standby: opts.standby ?? 0,
    max,
    persist: async () => {
      state.saves++;
      return true;
    },
    track: (p) => {
      const g = p.catch(() => {});
      background.add(g);
      void g.finally(() => background.delete(g));
    },
    writable: () => state.writable,
    stopping: () => state.stopping,
  });
  return {
    queue,
    table,
    driver,
    hostKeys,
    state,
    settled: async () => {
      while (background.size > 0) await Promise.allSettled([...background]);
    },
  };
}

/** The most driver creates in flight at once. */
function peakCreates(driver: MemoryDriver, run: () => Promise<unknown>): Promise<number> {
  let now = 0;
  let peak = 0;
  const create = driver.create.bind(driver);
  driver.create = async (id) => {
    now++;
    peak = Math.max(peak, now);
    try {
      return await create(id);
    } finally {
      now--;
    }
  };
  return run().then(() => peak);
}

test('replenish builds up to the standby target with the lowest numbers, at most `concurrency` at once', async (t) => {
  const s = setup({ concurrency: 2, standby: 5, latencyMs: 5 });
  const peak = await peakCreates(s.driver, () => s.queue.replenish());
  t.is(peak, 2);
  t.deepEqual(s.table.counts(), { clean: 5, leased: 0, building: 0, dirty: 0, broken: 0 });
  t.deepEqual([...s.table.values()].map((r) => r.id).sort(), ['vzsb-0001', 'vzsb-0002', 'vzsb-0003', 'vzsb-0004', 'vzsb-0005']);
  t.is(s.hostKeys.size, 5, 'each build read its host key');
  t.deepEqual(s.state.resets, [true, true, true, true, true]);
  t.deepEqual(s.driver.violations, []);
});

test('replenish stops at max, counts a build reserved for a user as not standby, and builds nothing while unwritable or stopping', async (t) => {
  const s = setup({ standby: 5, max: 3 });
  s.state.writable = false;
  await s.queue.replenish();
  t.is(s.table.size, 0);
  s.state.writable = true;
  s.state.stopping = true;
  await s.queue.replenish();
  t.is(s.table.size, 0);
  s.state.stopping = false;
  const forBob = s.queue.reserve('bob')!;
  await s.queue.replenish();
  t.is(s.table.size, 3);
  t.is(s.table.unreserved(), 2);
  t.is(forBob.state, 'building');
  t.true(await s.queue.buildLocked(forBob, true));
  t.is(forBob.state, 'clean');
  t.is(s.queue.reserve(), undefined, 'at max');
});

test('setStandby clamps to 0..max and refills when it grows', async (t) => {
  const s = setup({ standby: 0, max: 4 });
  s.queue.setStandby(9);
  t.is(s.queue.standby, 4);
  await s.settled();
  t.is(s.table.counts().clean, 4);
  s.queue.setStandby(-1);
  t.is(s.queue.standby, 0);
});

test('a reset is scheduled once per container, destroys and clones again, and waits for the disk', async (t) => {
  const s = setup({ standby: 1 });
  await s.queue.replenish();
  const rec = s.table.get('vzsb-0001')!;
  s.table.move(rec, 'dirty', 5);
  s.state.writable = false;
  t.false(await s.queue.scheduleReset(rec), 'not while the state cannot be written');
  t.is(rec.state, 'dirty');
  s.state.writable = true;
  const calls = s.driver.calls.length;
  const a = s.queue.scheduleReset(rec);
  t.is(s.queue.scheduleReset(rec), a, 'the same reset');
  t.true(await a);
  t.is(rec.state, 'clean');
  t.deepEqual(s.driver.calls.slice(calls).filter((c) => /^(destroy|create|start) /.test(c)), ['destroy vzsb-0001', 'create vzsb-0001', 'start vzsb-0001']);
  t.true(await s.queue.scheduleReset(rec), 'a clean container is not reset again');
  await s.settled();
});

test('a failed build leaves nothing: the record goes broken, is destroyed and its number is free', async (t) => {
  const s = setup({ standby: 0 });
  s.driver.failNext('start', 'vzsb-0001');
  const rec = s.queue.reserve()!;
  t.false(await s.queue.buildLocked(rec, true));
  t.is(rec.state, 'broken');
  t.truthy(rec.error);
  t.is(s.table.get('vzsb-0001'), undefined);
  t.false(s.driver.has('vzsb-0001'));
  t.deepEqual(s.state.resets, [false]);
});

test('repair destroys a broken container that is still there, so its number is built again', async (t) => {
  const s = setup({ standby: 1 });
  await s.queue.replenish();
  const rec = s.table.get('vzsb-0001')!;
  t.false(await s.queue.repair(rec), 'only broken ones');
  // The reset's destroy fails, and so does the clean-up's: the broken record stays.
  s.driver.failNext('destroy', 'vzsb-0001');
  s.driver.failNext('destroy', 'vzsb-0001');
  s.table.move(rec, 'dirty', 5);
  t.false(await s.queue.scheduleReset(rec));
  t.is(rec.state, 'broken');
  t.is(s.table.get('vzsb-0001'), rec, 'a destroy that failed keeps the record');
  s.state.writable = false;
  t.false(await s.queue.repair(rec), 'not while the state cannot be written');
  s.state.writable = true;
  t.true(await s.queue.repair(rec));
  t.is(s.table.get('vzsb-0001'), undefined);
  await s.settled();
  t.is(s.table.get('vzsb-0002')?.state, 'clean', 'the refill after the failed reset built the next number');
  t.is(s.queue.reserve()?.id, 'vzsb-0001', 'the repaired number is free again');
});
