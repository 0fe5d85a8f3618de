/**
 * Timings of the LXC driver on this machine: clone, start until sshd answers, destroy, and a
 * full reset (destroy + clone + start), as medians over RUNS; then RESETS resets of
 * PARALLEL containers at a time. Uses its own bridge (vzsbt200, 10.231.200.0/24) and a
 * temporary lxcPath, removed at the end.
 *   node --import tsx bench/drivers-lxc.ts [RUNS=20] [RESETS=50] [PARALLEL=4]
 * Unprivileged containers (id map) unless VZSB_BENCH_PRIVILEGED=1. Each clone gets the
 * deployed default disk quota (a 4096 MiB, 200,000-inode volume) unless VZSB_BENCH_NO_QUOTA=1.
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLogger, silentLogger } from '../src/common/log.js';
import { LxcDriver } from '../src/daemons/drivers/lxc.js';
import { createTestBridge, lxcConfigOn } from '../test/helpers/bridge.js';
import { grantRootSubIds } from '../test/helpers/subids.js';

const RUNS = Number(process.argv[2] ?? 20);
const RESETS = Number(process.argv[3] ?? 50);
const PARALLEL = Number(process.argv[4] ?? 4);
const PREFIX = 'vzbench-';
// Unprivileged containers, each with its own 65536 ids from the block at 200000000, unless VZSB_BENCH_PRIVILEGED=1.
const UNPRIVILEGED = !process.env.VZSB_BENCH_PRIVILEGED;
const IDMAP = { start: 200_000_000, count: 241 * 65536 };
const QUOTA = process.env.VZSB_BENCH_NO_QUOTA ? undefined : { diskMiB: 4096, inodes: 200_000 };

async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return performance.now() - t0;
}

function stats(xs: number[]): string {
  const s = [...xs].sort((a, b) => a - b);
  const q = (p: number) => s[Math.min(s.length - 1, Math.floor(p * s.length))]!;
  return `median ${q(0.5).toFixed(1)} ms  p90 ${q(0.9).toFixed(1)} ms  min ${s[0]!.toFixed(1)}  max ${s[s.length - 1]!.toFixed(1)}  (n=${s.length})`;
}

const bridge = await createTestBridge(200);
const releaseSubIds = UNPRIVILEGED ? await grantRootSubIds(IDMAP.start, IDMAP.count) : undefined;
const lxcPath = await mkdtemp(join(tmpdir(), 'vzsb-drvbench-'));
await chmod(lxcPath, 0o711);
const driver = new LxcDriver({
  logger: process.env.VZSB_BENCH_LOG ? createLogger({ level: 'debug' }) : silentLogger,
  config: lxcConfigOn(bridge, {
    prefix: PREFIX,
    lxcPath,
    baseName: 'vzbench-base',
    limits: { memoryMiB: 512, cpuShares: 1024, pidsMax: 1024 },
    ...(UNPRIVILEGED ? { idmap: IDMAP } : {}),
    ...(QUOTA ? { quota: QUOTA } : {}),
  }),
});
try {
  const prep = await timed(() => driver.prepare());
  console.log(`prepare (base build, rootfs cached): ${prep.toFixed(0)} ms; ${UNPRIVILEGED ? 'unprivileged' : 'privileged'}, ${QUOTA ? `quota ${QUOTA.diskMiB} MiB / ${QUOTA.inodes} inodes` : 'no quota'}`);
  const clone: number[] = [];
  const start: number[] = [];
  const destroy: number[] = [];
  const reset: number[] = [];
  const id = `${PREFIX}1`;
  for (let i = 0; i < RUNS; i++) {
    clone.push(await timed(() => driver.create(id)));
    start.push(await timed(() => driver.start(id)));
    destroy.push(await timed(() => driver.destroy(id)));
  }
  await driver.create(id);
  await driver.start(id);
  for (let i = 0; i < RUNS; i++) {
    reset.push(await timed(async () => {
      await driver.destroy(id);
      await driver.create(id);
      await driver.start(id);
    }));
  }
  await driver.destroy(id);
  console.log(`clone (create)          ${stats(clone)}`);
  console.log(`start to sshd answering ${stats(start)}`);
  console.log(`destroy (running)       ${stats(destroy)}`);
  console.log(`reset                   ${stats(reset)}`);

  const ids = Array.from({ length: PARALLEL }, (_, i) => `${PREFIX}${i + 10}`);
  await Promise.all(ids.map(async (x) => { await driver.create(x); await driver.start(x); }));
  let next = 0;
  const each: number[] = [];
  const total = await timed(() => Promise.all(ids.map(async (x) => {
    while (next < RESETS) {
      next++;
      each.push(await timed(async () => {
        await driver.destroy(x);
        await driver.create(x);
        await driver.start(x);
      }));
    }
  })));
  console.log(`${RESETS} resets, ${PARALLEL} at a time: ${total.toFixed(0)} ms total; per reset ${stats(each)}`);
} finally {
  for (const c of await driver.list()) await driver.destroy(c.id);
  await rm(lxcPath, { recursive: true, force: true });
  await bridge.remove();
  await releaseSubIds?.();
}
