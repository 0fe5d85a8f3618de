import test from 'ava';
import { mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquirePidLock, LockHeldError } from '../../src/daemons/common/pid-lock.js';
import { silentLogger } from '../../src/common/log.js';
import { parseHypervisorConfig } from '../../src/daemons/hypervisor/config.js';
import { takeStateLock } from '../../src/daemons/hypervisor/serve.js';

test('an empty lock file (a writer between create and write) is held, not taken over; an old empty one is stale', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'hypervisor.lock');
  await writeFile(path, '');
  const err = await t.throwsAsync(acquirePidLock(path), { instanceOf: LockHeldError });
  t.is(err?.role, 'starting');
  t.is(await readFile(path, 'utf8'), '', 'the writer keeps its file');
  const old = new Date(Date.now() - 60_000);
  await utimes(path, old, old);
  const lock = await acquirePidLock(path, { role: 'daemon' });
  t.regex(await readFile(path, 'utf8'), new RegExp(`^${process.pid} \\d+ daemon\\n$`), 'a lock file is whole from the start');
  await lock.release();
});

test('a starting daemon waits through reclaim passes that take the lock in quick turns, and never holds it with one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const config = parseHypervisorConfig({ tokens: {}, stateDir: dir, pool: { standby: 0, max: 1 }, driver: { kind: 'memory' } });
  let holders = 0;
  let overlap = false;
  let passes = 0;
  let stop = false;
  const passLoop = (async () => {
    while (!stop && passes < 40) {
      const lock = await takeStateLock(config, 'reclaim').catch(() => undefined);
      if (!lock) {
        await new Promise((r) => setImmediate(r));
        continue;
      }
      passes++;
      if (++holders > 1) overlap = true;
      await new Promise((r) => setTimeout(r, 5));
      holders--;
      await lock.release();
    }
  })();
  // The daemon starts while the passes are taking turns (not on a timer: a loaded machine may
  // not have run the first pass yet after 20 ms).
  while (passes < 2) await new Promise((r) => setTimeout(r, 1));
  const lock = await takeStateLock(config, 'daemon', silentLogger);
  if (++holders > 1) overlap = true;
  stop = true;
  await new Promise((r) => setTimeout(r, 30));
  holders--;
  await lock.release();
  await passLoop;
  t.true(passes > 0);
  t.false(overlap, 'two holders at once');
});
