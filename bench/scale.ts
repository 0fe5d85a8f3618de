/**
 * The control plane at campus scale: N hypervisor daemons (in-memory driver, a few ms per driver
 * operation, each its own HTTP server on loopback, all in one child process:
 * bench/scale-hypervisors.ts) and one real balancer
 * (`vzsb balancer`, a child process, so its CPU is its own), with leases requested as the
 * gateway requests them (its own client, src/shell/balancer-client.ts). For each N it prints:
 *   - lease p50/p95/p99 over SEQUENTIAL leases of new users, one after another;
 *   - a BURST of new users' leases at once: how many were granted, and their p95;
 *   - hypervisor requests per lease, counted from the hypervisors' own metrics
 *     (vzsb_hypervisor_http_requests_total, every route but /healthz and /metrics);
 *   - the balancer's CPU (user+system, /proc) per lease over the sequential phase.
 * and, last, one line:
 *   scale: hypervisors=N burst=OK/TOTAL requests_per_lease=R lease_p99_ms=P balancer_cpu_ms_per_lease=C
 * for the largest N. Targets at N=100: the burst of 100 all granted, at most 3 requests per lease,
 * lease p99 within 2x of N=1's, balancer CPU per lease under 5 ms.
 *   node --import tsx bench/scale.ts [--hypervisors N[,N...]] [--burst B] [--leases L] [--latency MS]
 * Default: --hypervisors 1,20,100 --burst 100 --leases 200 --latency 5. Builds dist/ first.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { run } from '../src/common/exec.js';
import { generateEd25519 } from '../src/daemons/common/ssh-key.js';
import { releaseLease, requestLease, type BalancerClientOptions } from '../src/shell/balancer-client.js';
import { percentile } from './stats.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
const TOKEN = 'bench-scale-token-0123456789abcdef';
const LEASE_TOKEN = 'bench-scale-gateway-0123456789';

function option(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}
const SIZES = option('hypervisors', '1,20,100').split(',').map(Number);
const BURST = Number(option('burst', '100'));
const LEASES = Number(option('leases', '200'));
const LATENCY = Number(option('latency', '5'));
if (SIZES.some((n) => !Number.isInteger(n) || n < 1) || !(BURST >= 1) || !(LEASES >= 1)) {
  process.stderr.write('usage: bench/scale.ts [--hypervisors N[,N...]] [--burst B] [--leases L] [--latency MS]\n');
  process.exit(1);
}

interface BenchHypervisor {
  name: string;
  url: string;
}

/** The hypervisors' process: their URLs, and a way to wait until their pools settled. */
interface HypervisorHost {
  hyps: BenchHypervisor[];
  settle(): Promise<void>;
  stop(): Promise<void>;
}

interface Row {
  n: number;
  p50: number;
  p95: number;
  p99: number;
  burstOk: number;
  burstTotal: number;
  burstP95: number;
  requestsPerLease: number;
  cpuMsPerLease: number;
  errors: string[];
}

async function startHypervisors(n: number, work: string): Promise<HypervisorHost> {
  // Room for every lease of a phase on any one of them (placement may put them anywhere),
  // and enough clean ones ready that leases are pool hits, as in a class.
  const perHyp = Math.ceil(Math.max(LEASES, BURST) / n);
  const child = spawn(process.execPath, ['--import', 'tsx', join(ROOT, 'bench/scale-hypervisors.ts'), String(n), String(LATENCY), String(Math.min(perHyp + 2, 400)), String(Math.max(LEASES, BURST) + 4), work, TOKEN], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout! });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const nextLine = () => new Promise<string>((resolve) => waiting.push(resolve));
  const hyps = JSON.parse(await nextLine()) as BenchHypervisor[];
  return {
    hyps,
    settle: async () => {
      const done = nextLine();
      child.stdin!.write('settle\n');
      await done;
    },
    stop: async () => {
      const exited = new Promise((r) => child.once('exit', r));
      child.stdin!.end();
      await exited;
    },
  };
}

/** Requests the hypervisors served (from their own metrics), health polls and metrics scrapes left out. */
async function leaseRequests(hyps: BenchHypervisor[]): Promise<number> {
  const counts = await Promise.all(
    hyps.map(async (h) => {
      const text = await fetch(`${h.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } }).then((r) => r.text());
      let total = 0;
      for (const line of text.split('\n')) {
        const m = /^vzsb_hypervisor_http_requests_total\{[^}]*route="([^"]*)"[^}]*\} (\d+)/.exec(line);
        if (m && m[1] !== '/healthz' && m[1] !== '/metrics') total += Number(m[2]);
      }
      return total;
    }),
  );
  return counts.reduce((a, b) => a + b, 0);
}

function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  // utime and stime, fields 14 and 15 of stat (11 and 12 after the command name).
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
}

async function startBalancer(hyps: BenchHypervisor[], work: string): Promise<{ child: ChildProcess; url: string }> {
  const file = join(work, 'balancer.yaml');
  await writeFile(
    file,
    `listen: {host: 127.0.0.1, port: 0}
tokens: {lease: [${LEASE_TOKEN}], admin: [${LEASE_TOKEN}], metrics: [${LEASE_TOKEN}]}
log: {level: info}
hypervisors:
${hyps.map((h) => `  - {name: ${h.name}, url: "${h.url}", token: ${TOKEN}}`).join('\n')}
`,
  );
  const child = spawn(process.execPath, [join(ROOT, 'bin/vzsb.js'), 'balancer', '--config', file], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the balancer did not listen within 30 s: ${out}`)), 30_000);
    const onData = (d: Buffer) => {
      out += d.toString();
      const line = out.split('\n').find((l) => l.includes('"daemon.listening"'));
      if (line) {
        clearTimeout(timer);
        resolve(`http://127.0.0.1:${(JSON.parse(line) as { port: number }).port}`);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => reject(new Error(`the balancer exited (${code}): ${out}`)));
  });
  // Keep reading so its pipe never fills.
  child.stdout!.resume();
  child.stderr!.resume();
  return { child, url };
}

async function waitAllUp(url: string, n: number): Promise<void> {
  const until = Date.now() + 30_000;
  for (;;) {
    const res = await fetch(`${url}/healthz`).then((r) => r.json() as Promise<{ hypervisors: { up: number } }>).catch(() => undefined);
    if (res && res.hypervisors.up === n) return;
    if (Date.now() > until) throw new Error(`only ${res?.hypervisors.up ?? 0} of ${n} hypervisors up for the balancer`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

async function measure(n: number, publicKey: string): Promise<Row> {
  const work = await mkdtemp(join(tmpdir(), 'vzsb-bench-scale-'));
  const host = await startHypervisors(n, work);
  const hyps = host.hyps;
  const balancer = await startBalancer(hyps, work);
  const errors: string[] = [];
  try {
    await waitAllUp(balancer.url, n);
    const client: BalancerClientOptions = { balancers: [balancer.url], token: LEASE_TOKEN, connectTimeoutMs: 3000, requestTimeoutMs: 20_000 };
    const lease = async (user: string): Promise<number | undefined> => {
      const t0 = performance.now();
      try {
        await requestLease(client, user, publicKey, 20_000);
        return performance.now() - t0;
      } catch (err) {
        if (errors.length < 5) errors.push(`${user}: ${(err as Error).message} ${(err as { details?: string }).details ?? ''}`);
        return undefined;
      }
    };
    const releaseAll = async (users: string[]) => {
      await Promise.all(users.map((u) => releaseLease(client, u, balancer.url, 20_000).catch(() => undefined)));
      await host.settle();
    };
    // A few leases to warm up the JIT on both sides, not counted.
    const warm = Array.from({ length: 10 }, (_, i) => `warm${i}`);
    for (const u of warm) await lease(u);
    await releaseAll(warm);

    const before = await leaseRequests(hyps);
    const cpu0 = cpuMsOf(balancer.child.pid!);
    const times: number[] = [];
    const seq = Array.from({ length: LEASES }, (_, i) => `seq${i}`);
    for (const u of seq) {
      const ms = await lease(u);
      if (ms !== undefined) times.push(ms);
    }
    const cpuMs = cpuMsOf(balancer.child.pid!) - cpu0;
    const requests = (await leaseRequests(hyps)) - before;
    await releaseAll(seq);

    const burstUsers = Array.from({ length: BURST }, (_, i) => `burst${i}`);
    const burst = await Promise.all(burstUsers.map(lease));
    const granted = burst.filter((x): x is number => x !== undefined);
    await releaseAll(burstUsers);
    return {
      n,
      p50: percentile(times, 50),
      p95: percentile(times, 95),
      p99: percentile(times, 99),
      burstOk: granted.length,
      burstTotal: BURST,
      burstP95: percentile(granted, 95),
      requestsPerLease: requests / LEASES,
      cpuMsPerLease: cpuMs / LEASES,
      errors,
    };
  } finally {
    balancer.child.kill('SIGTERM');
    await new Promise((r) => balancer.child.once('exit', r));
    await host.stop();
    await rm(work, { recursive: true, force: true });
  }
}

const built = await run('npm', ['run', 'build'], { cwd: ROOT });
if (built.exitCode !== 0) {
  process.stderr.write(built.stdout + built.stderr);
  process.exit(1);
}
const { publicKey } = generateEd25519('bench@scale');
const rows: Row[] = [];
process.stdout.write(`${LEASES} sequential leases and a burst of ${BURST} per size; in-memory driver, ${LATENCY} ms per driver operation\n\n`);
process.stdout.write('| hypervisors | lease p50 / p95 / p99 | burst granted (p95) | hypervisor requests per lease | balancer CPU per lease |\n| --- | --- | --- | --- | --- |\n');
for (const n of SIZES) {
  const row = await measure(n, publicKey);
  rows.push(row);
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '-');
  process.stdout.write(`| ${n} | ${f(row.p50)} / ${f(row.p95)} / ${f(row.p99)} ms | ${row.burstOk}/${row.burstTotal} (${f(row.burstP95)} ms) | ${row.requestsPerLease.toFixed(2)} | ${row.cpuMsPerLease.toFixed(2)} ms |\n`);
  for (const e of row.errors) process.stdout.write(`    failed: ${e}\n`);
}
const last = rows[rows.length - 1]!;
process.stdout.write(
  `\nscale: hypervisors=${last.n} burst=${last.burstOk}/${last.burstTotal} requests_per_lease=${last.requestsPerLease.toFixed(2)} lease_p99_ms=${last.p99.toFixed(1)} balancer_cpu_ms_per_lease=${last.cpuMsPerLease.toFixed(2)}\n`,
);
