/**
 * The hypervisors of bench/scale.ts, in a process of their own (as on their own hosts: their
 * work does not delay the client's clock): N in-memory hypervisor daemons on loopback.
 *   node --import tsx bench/scale-hypervisors.ts N LATENCY_MS STANDBY MAX WORKDIR TOKEN
 * Prints one JSON line [{name, url}] once every pool is filled; then, for each line "settle" on
 * stdin, waits until every pool's background work (resets after releases) is done and prints
 * "settled". Stops on SIGTERM or the end of stdin.
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { silentLogger } from '../src/common/log.js';
import { systemClock } from '../src/daemons/common/clock.js';
import { serve } from '../src/daemons/common/serve.js';
import { MemoryDriver } from '../src/daemons/drivers/memory.js';
import { createHypervisorApp } from '../src/daemons/hypervisor/app.js';
import { parseHypervisorConfig } from '../src/daemons/hypervisor/config.js';
import { LeaseStore } from '../src/daemons/hypervisor/lease-store.js';
import { HypervisorMetrics } from '../src/daemons/hypervisor/metrics.js';
import { Pool } from '../src/daemons/hypervisor/pool.js';

const [n, latency, standby, max] = process.argv.slice(2, 6).map(Number) as [number, number, number, number];
const work = process.argv[6]!;
const token = process.argv[7]!;

const hyps = await Promise.all(
  Array.from({ length: n }, async (_, i) => {
    const name = `h${String(i + 1).padStart(3, '0')}`;
    const prefix = `b${i + 1}-`;
    const config = parseHypervisorConfig({
      listen: { host: '127.0.0.1', port: 0 },
      tokens: { lease: [token], admin: [token], metrics: [token] },
      stateDir: join(work, name),
      pool: { standby, max, graceSeconds: 0, checkSeconds: 3600, buildConcurrency: 8 },
      driver: { kind: 'memory', prefix },
    });
    const driver = new MemoryDriver({ prefix, latencyMs: latency });
    const metrics = new HypervisorMetrics({ processMetrics: false });
    const pool = new Pool({ driver, store: new LeaseStore(config.stateDir), clock: systemClock, logger: silentLogger, config: config.pool, prefix, observer: metrics });
    await pool.start();
    const app = createHypervisorApp({ driver, pool, clock: systemClock, logger: silentLogger, config, metrics });
    const served = await serve(app, { listen: config.listen, logger: silentLogger, signals: false });
    return { name, url: served.url, pool, served };
  }),
);
await Promise.all(hyps.map((h) => h.pool.settled()));
process.stdout.write(JSON.stringify(hyps.map((h) => ({ name: h.name, url: h.url }))) + '\n');

const stop = async () => {
  await Promise.all(hyps.map((h) => h.served.stop()));
  await Promise.all(hyps.map((h) => h.pool.stop()));
  process.exit(0);
};
process.on('SIGTERM', () => void stop());
const lines = createInterface({ input: process.stdin });
lines.on('line', (line) => {
  if (line.trim() === 'settle') void Promise.all(hyps.map((h) => h.pool.settled())).then(() => process.stdout.write('settled\n'));
});
lines.on('close', () => void stop());
