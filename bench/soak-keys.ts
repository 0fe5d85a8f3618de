/**
 * The key half of the soak: makes N one-time session keys the way the gateway's session agent
 * does (createSessionKey: ed25519, DER exports, OpenSSH private key), and prints the latency
 * and memory of the first and the last block of keys. A Node that deadlocks (as JWK exports of
 * ed25519 keys did on Node 18 and 20) stops printing: the watchdog then says so and exits 3.
 *   node --import tsx bench/soak-keys.ts [KEYS=100000] [--jwk]
 * --jwk makes the keys with the JWK export the gateway used before (to show the deadlock).
 * It runs without tsx too, bundled: `npx esbuild bench/soak-keys.ts --bundle --platform=node
 * --format=esm --outfile=/tmp/soak-keys.mjs` and `node /tmp/soak-keys.mjs` (Debian 12's Node 18).
 */
import { generateKeyPairSync } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createSessionKey } from '../src/shell/session-key.js';
import { fmtMs, percentile } from './stats.js';

export interface KeyBlock {
  /** keys made before this block */
  done: number;
  p50Ms: number;
  p99Ms: number;
  rssMiB: number;
  heapMiB: number;
}

const BLOCK = 1000;

/** The old pattern, only for --jwk: what generateEd25519 did before. */
function jwkKey(): string {
  const { publicKey } = generateKeyPairSync('ed25519');
  return publicKey.export({ format: 'jwk' }).x as string;
}

function makeKeys(total: number, jwk: boolean, onBlock: (b: KeyBlock) => void): void {
  let times: number[] = [];
  for (let i = 0; i < total; i++) {
    const t0 = performance.now();
    if (jwk) jwkKey();
    else createSessionKey('soak@vzsb-gateway');
    times.push(performance.now() - t0);
    if (times.length === BLOCK || i === total - 1) {
      const mem = process.memoryUsage();
      onBlock({ done: i + 1 - times.length, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), rssMiB: mem.rss / 2 ** 20, heapMiB: mem.heapUsed / 2 ** 20 });
      times = [];
    }
  }
}

export function formatBlock(b: KeyBlock): string {
  return `keys ${b.done}-${b.done + BLOCK}: p50 ${fmtMs(b.p50Ms)} p99 ${fmtMs(b.p99Ms)}, rss ${b.rssMiB.toFixed(1)} MiB, heap ${b.heapMiB.toFixed(1)} MiB`;
}

/**
 * Make `total` keys in a child process, watched from here: a block that takes longer than
 * `stallMs` is a hang (a deadlocked process cannot report it itself), and the child is killed.
 */
export function soakKeys(total: number, options: { jwk?: boolean; stallMs?: number } = {}): Promise<{ blocks: KeyBlock[]; totalMs: number; hung: boolean }> {
  const stallMs = options.stallMs ?? 30_000;
  const started = performance.now();
  const args = [...process.execArgv, fileURLToPath(import.meta.url), '--child', String(total), ...(options.jwk ? ['--jwk'] : [])];
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'inherit'] });
  const blocks: KeyBlock[] = [];
  let hung = false;
  let timer = setTimeout(hang, stallMs);
  function hang() {
    hung = true;
    child.kill('SIGKILL'); // SIGTERM is not enough for a process stuck in a mutex
  }
  createInterface({ input: child.stdout }).on('line', (line) => {
    blocks.push(JSON.parse(line) as KeyBlock);
    clearTimeout(timer);
    timer = setTimeout(hang, stallMs);
  });
  return new Promise((resolve) => {
    child.once('close', () => {
      clearTimeout(timer);
      resolve({ blocks, totalMs: performance.now() - started, hung });
    });
  });
}

export function keyReport(result: { blocks: KeyBlock[]; totalMs: number; hung: boolean }, total: number): string[] {
  const { blocks } = result;
  const lines = [`${total} session keys on ${process.version}: ${result.hung ? `HUNG after ${(blocks.length * BLOCK)} keys (no block finished within the stall time)` : `${fmtMs(result.totalMs)} in all`}`];
  if (blocks[0]) lines.push(`  start: ${formatBlock(blocks[0])}`);
  if (blocks.length > 1) lines.push(`  end:   ${formatBlock(blocks[blocks.length - 1]!)}`);
  return lines;
}

const entry = process.argv[1] && /soak-keys\.(ts|mjs|js)$/.test(process.argv[1]);
const numbers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const total = Number(numbers[0] ?? 100_000);
if (entry && process.argv.includes('--child')) {
  makeKeys(total, process.argv.includes('--jwk'), (b) => process.stdout.write(JSON.stringify(b) + '\n'));
} else if (entry) {
  const result = await soakKeys(total, { jwk: process.argv.includes('--jwk') });
  process.stdout.write(keyReport(result, total).join('\n') + '\n');
  process.exitCode = result.hung ? 3 : 0;
}
