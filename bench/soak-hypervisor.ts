/**
 * Soak of the hypervisor daemon: CYCLES lease/release cycles over real HTTP on loopback
 * (keep-alive), on the in-memory driver (no containers: this measures the daemon itself:
 * routing, validation, the pool, state saves, lease records, resets), USERS at a time.
 * Prints the RSS and heap at the start, every tenth of the run and at the end, and the
 * growth; exits 1 if the RSS after the run (and a GC) grew more than LIMIT_MB over the
 * RSS after the warm-up.
 *   node --expose-gc --import tsx bench/soak-hypervisor.ts [CYCLES=100000] [USERS=8] [LIMIT_MB=64]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../src/common/log.js';
import { generateEd25519 } from '../src/daemons/common/ssh-key.js';
import { MemoryDriver } from '../src/daemons/drivers/memory.js';
import { parseHypervisorConfig } from '../src/daemons/hypervisor/config.js';
import { startHypervisor } from '../src/daemons/hypervisor/serve.js';

const CYCLES = Number(process.argv[2] ?? 100_000);
const USERS = Number(process.argv[3] ?? 8);
const LIMIT_MB = Number(process.argv[4] ?? 64);
const TOKEN = 'soak-token-0123456789abcdef';
const WARMUP = Math.min(2000, Math.floor(CYCLES / 10));

const mb = (n: number) => `${(n / 1048576).toFixed(1)} MB`;
const gc = (globalThis as { gc?: () => void }).gc;
function memory(label: string): number {
  gc?.();
  const m = process.memoryUsage();
  process.stdout.write(`${label.padEnd(18)} rss ${mb(m.rss).padStart(9)}  heap ${mb(m.heapUsed).padStart(9)}  external ${mb(m.external).padStart(8)}\n`);
  return m.rss;
}

const dir = await mkdtemp(join(process.env.SOAK_DIR ?? tmpdir(), 'vzsb-soak-'));
const config = parseHypervisorConfig({
  listen: { host: '127.0.0.1', port: 0 },
  tokens: { lease: [TOKEN], admin: [TOKEN] },
  stateDir: join(dir, 'state'),
  pool: { standby: USERS, max: USERS * 2 + 2, graceSeconds: 0, checkSeconds: 3600 },
  driver: { kind: 'memory', prefix: 'soak-' },
});
const driver = new MemoryDriver({ prefix: 'soak-' });
const daemon = await startHypervisor(config, { source: 'soak', logger: silentLogger, signals: false, driver: { driver, prefix: 'soak-' } });
await daemon.pool.settled();
const url = daemon.served.url;
const keys = Array.from({ length: USERS }, (_, i) => generateEd25519(`soak${i}`).publicKey);
const headers = { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' };

let done = 0;
let failed = 0;
async function cycle(i: number): Promise<void> {
  const user = `soak${i}`;
  const lease = await fetch(`${url}/v1/leases`, { method: 'POST', headers, body: JSON.stringify({ user, publicKey: keys[i] }) });
  await lease.arrayBuffer();
  const release = await fetch(`${url}/v1/leases/${user}`, { method: 'DELETE', headers });
  await release.arrayBuffer();
  if (lease.status !== 200 || release.status !== 200) failed++;
  done++;
}

async function run(total: number, onTenth?: (n: number) => void): Promise<void> {
  let next = 0;
  const step = Math.max(1, Math.floor(total / 10));
  await Promise.all(
    Array.from({ length: USERS }, async (_, i) => {
      while (next < total) {
        next++;
        await cycle(i);
        if (onTenth && done % step === 0) onTenth(done);
      }
    }),
  );
}

try {
  const start = memory('start');
  const t0 = performance.now();
  await run(WARMUP);
  const warm = memory(`after ${WARMUP} warm-up`);
  done = 0;
  await run(CYCLES, (n) => memory(`${n} cycles`));
  await daemon.pool.settled();
  const seconds = (performance.now() - t0) / 1000;
  const end = memory('end');
  process.stdout.write(
    `${CYCLES} lease/release cycles (+${WARMUP} warm-up), ${USERS} at a time: ${seconds.toFixed(1)} s, ${Math.round((CYCLES + WARMUP) / seconds)} cycles/s, ${failed} failed\n` +
      `rss: start ${mb(start)}, after warm-up ${mb(warm)}, end ${mb(end)} (${end >= warm ? '+' : ''}${mb(end - warm)} over the run)\n` +
      `containers left: ${JSON.stringify(daemon.pool.capacity())}\n`,
  );
  if (failed > 0 || end - warm > LIMIT_MB * 1048576) {
    process.stdout.write(`FAIL: ${failed > 0 ? `${failed} cycles failed` : `RSS grew more than ${LIMIT_MB} MB`}\n`);
    process.exitCode = 1;
  }
} finally {
  await daemon.stop();
  await rm(dir, { recursive: true, force: true });
}
