/**
 * The hypervisor with real LXC containers, over real HTTP on loopback:
 *   1. time from an empty pool to STANDBY clean containers ready;
 *   2. warm lease latency (POST /v1/leases with a clean container ready and the previous
 *      release's reset finished, then DELETE) over LEASES leases, p50/p95/p99, as the client
 *      sees it and as the daemon measured it;
 *   3. time to reset RESETS containers (POST /v1/reset {wait: true}).
 * Targets: warm lease p50 < 50 ms; 50 resets < 10 s.
 * Uses its own bridge (vzsbt201, 10.231.201.0/24), a temporary lxcPath and state directory,
 * all removed at the end.
 *   node --import tsx bench/hypervisor.ts [LEASES=100] [RESETS=50] [STANDBY=10] [BUILD_CONCURRENCY=4]
 */
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { run } from '../src/common/exec.js';
import { createLogger, silentLogger } from '../src/common/log.js';
import { systemClock } from '../src/daemons/common/clock.js';
import { serve } from '../src/daemons/common/serve.js';
import { lxcDriverConfigSchema } from '../src/daemons/drivers/lxc-config.js';
import { LxcDriver } from '../src/daemons/drivers/lxc.js';
import { createHypervisorApp } from '../src/daemons/hypervisor/app.js';
import { parseHypervisorConfig } from '../src/daemons/hypervisor/config.js';
import { LeaseStore } from '../src/daemons/hypervisor/lease-store.js';
import { HypervisorMetrics } from '../src/daemons/hypervisor/metrics.js';
import type { Capacity } from '../src/api/v1/hypervisor.js';
import { Pool } from '../src/daemons/hypervisor/pool.js';
import { createTestBridge, lxcConfigOn } from '../test/helpers/bridge.js';
import { grantRootSubIds } from '../test/helpers/subids.js';
import { fmtMs, percentile } from './stats.js';

const LEASES = Number(process.argv[2] ?? 100);
const RESETS = Number(process.argv[3] ?? 50);
const STANDBY = Number(process.argv[4] ?? 10);
const BUILD_CONCURRENCY = Number(process.argv[5] ?? 4);
const INDEX = 201;
const PREFIX = 'vzhb-';
const TOKEN = 'bench-token-0123456789abcdef';

const bridge = await createTestBridge(INDEX);
const work = await mkdtemp(join(tmpdir(), 'vzsb-bench-hyp-'));
await chmod(work, 0o711); // container roots (unprivileged) traverse to their rootfs
const logger = process.env.VZSB_BENCH_LOG ? createLogger({ level: 'debug' }) : silentLogger;
// Unprivileged containers, each with its own 65536 ids from the block at 300000000 (249 slots: .2-.250).
const IDMAP = { start: 300_000_000, count: 249 * 65536 };
const releaseSubIds = await grantRootSubIds(IDMAP.start, IDMAP.count);
const driverOptions = lxcConfigOn(bridge, { prefix: PREFIX, lxcPath: join(work, 'lxc'), baseName: 'vzhbbase', firstAddress: bridge.address(2), idmap: IDMAP });
const driver = new LxcDriver({ config: lxcDriverConfigSchema.parse(driverOptions), logger });
const config = parseHypervisorConfig({
  listen: { host: '127.0.0.1', port: 0 },
  tokens: { lease: [TOKEN], admin: [TOKEN] },
  stateDir: join(work, 'state'),
  pool: { standby: STANDBY, max: Math.max(RESETS, STANDBY) + 2, buildConcurrency: BUILD_CONCURRENCY },
  driver: { kind: 'lxc', ...driverOptions },
});

let stop = async () => {};
try {
  process.stdout.write(`preparing the LXC base (first time only: slow)...\n`);
  await driver.prepare();
  const metrics = new HypervisorMetrics({ processMetrics: false });
  const pool = new Pool({ driver, store: new LeaseStore(config.stateDir), clock: systemClock, logger, config: config.pool, prefix: PREFIX, observer: metrics });
  const app = createHypervisorApp({ driver, pool, clock: systemClock, logger, config, metrics });

  // 1. Empty pool to standby.
  const t0 = performance.now();
  await pool.start();
  await until(() => pool.capacity().clean >= STANDBY);
  const fillMs = performance.now() - t0;

  const served = await serve(app, { listen: config.listen, logger, signals: false });
  stop = async () => {
    await served.stop();
    await pool.stop();
  };
  const call = async (method: string, path: string, body?: unknown) => {
    const res = await fetch(served.url + path, {
      method,
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const json = (await res.json()) as Record<string, unknown>;
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${JSON.stringify(json)}`);
    return json;
  };

  // 2. Warm leases: a clean container is ready and no reset runs when each one is asked for.
  const key = ssh2.utils.generateKeyPairSync('ed25519').public;
  await call('GET', '/v1/leases'); // first connection, out of the measurement
  const client: number[] = [];
  const server: number[] = [];
  let misses = 0;
  for (let i = 0; i < LEASES; i++) {
    await until(() => idle(pool.capacity()) && pool.capacity().clean >= 1);
    const s = performance.now();
    const lease = await call('POST', '/v1/leases', { user: `bench${i}`, publicKey: key });
    client.push(performance.now() - s);
    server.push(lease.ms as number);
    if (lease.hit !== true) misses++;
    await call('DELETE', `/v1/leases/bench${i}`);
  }
  await until(() => idle(pool.capacity()) && pool.capacity().clean >= STANDBY);

  // 3. Reset RESETS containers at once.
  pool.setStandby(RESETS);
  const f0 = performance.now();
  await until(() => pool.capacity().clean >= RESETS);
  const fill50Ms = performance.now() - f0;
  const r0 = performance.now();
  const report = await call('POST', '/v1/reset', { wait: true });
  const resetMs = performance.now() - r0;
  const failed = (report.failed as string[]).length;

  const q = (xs: number[], p: number) => percentile(xs, p).toFixed(1);
  const lines = [
    `hypervisor benchmark (LXC, ${BUILD_CONCURRENCY} parallel builds, ${(await run('nproc', [])).stdout.trim()} cores, load average ${(await run('cat', ['/proc/loadavg'])).stdout.split(' ')[0]})`,
    `empty pool -> ${STANDBY} clean ready:       ${fmtMs(fillMs)}`,
    `warm lease over HTTP, client (n=${LEASES}): p50 ${q(client, 50)} ms  p95 ${q(client, 95)} ms  p99 ${q(client, 99)} ms  (target p50 < 50 ms)`,
    `warm lease, daemon's own measure:    p50 ${q(server, 50)} ms  p95 ${q(server, 95)} ms  p99 ${q(server, 99)} ms  (${misses} misses)`,
    `fill to ${RESETS} clean:                    ${fmtMs(fill50Ms)}`,
    `reset ${(report.reset as string[]).length} containers (POST /v1/reset): ${fmtMs(resetMs)}  (${failed} failed; target 50 < 10 s)`,
  ];
  process.stdout.write(lines.join('\n') + '\n');
  process.stdout.write(JSON.stringify({ fillMs, client: { p50: percentile(client, 50), p95: percentile(client, 95), p99: percentile(client, 99) }, server: { p50: percentile(server, 50) }, misses, fill50Ms, resetMs, resets: (report.reset as string[]).length, failed }) + '\n');
} finally {
  await stop().catch(() => undefined);
  for (const c of await driver.list().catch(() => [])) await driver.destroy(c.id).catch(() => undefined);
  await run('lxc-destroy', ['-P', join(work, 'lxc'), '-n', 'vzhbbase']);
  await rm(work, { recursive: true, force: true });
  await bridge.remove();
  await releaseSubIds();
}

function idle(c: Capacity): boolean {
  return c.building === 0 && c.dirty === 0;
}

/** Poll a condition of the in-process pool (a few ms apart) for at most 5 minutes. */
async function until(ok: () => boolean): Promise<void> {
  const deadline = Date.now() + 300_000;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error('timed out waiting for the pool');
    await new Promise((r) => setTimeout(r, 5));
  }
}
