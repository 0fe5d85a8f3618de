/**
 * Soak of the gateway's session agent: can one agent serve a long day of logins?
 * 1. makes KEYS one-time session keys as the agent does (bench/soak-keys.ts, in a watched child
 *    process: a deadlock is reported, not waited for), with latency and memory of the first and
 *    last thousand;
 * 2. runs LOGINS logins (`ssh student@gateway true`: sshd, the login shell, sudo, the client,
 *    the agent, a lease, the container's sshd) through ONE session agent, PARALLEL at a time,
 *    and prints the login latency and the agent's memory (VmRSS) and CPU for the first and the
 *    last block of logins.
 *   node --import tsx bench/soak.ts [KEYS=100000] [LOGINS=5000] [PARALLEL=4]
 * The logins run against a whole gateway on this machine (test/shell/gateway-fixture.ts, bridge
 * vzsbt62) with a grace period, so that a student's next login renews their lease: the
 * containers are not reset between logins, and what is measured is the agent.
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run } from '../src/common/exec.js';
import { createGatewayFixture, type GatewayFixture } from '../test/shell/gateway-fixture.js';
import { keyReport, soakKeys } from './soak-keys.js';
import { fmtMs, percentile } from './stats.js';

const numbers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const KEYS = Number(numbers[0] ?? 100_000);
const LOGINS = Number(numbers[1] ?? 5000);
const PARALLEL = Number(numbers[2] ?? 4);
const BLOCK = Math.min(250, Math.max(1, Math.floor(LOGINS / 4)));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

function sshLogin(gw: GatewayFixture, user: string, timeoutMs = 60_000): Promise<{ ok: boolean; ms: number; error?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('ssh', [...gw.sshArgs(user), 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, ms: performance.now() - t0, ...(code === 0 ? {} : { error: `exit ${code}: ${err.trim().slice(-200)}` }) });
    });
  });
}

async function agentStats(pid: number | undefined): Promise<{ rssMiB: number; cpuMs: number }> {
  if (!pid) return { rssMiB: NaN, cpuMs: NaN };
  // The agent may be gone (it exited): reported after the run, with its exit and its last lines.
  const status = await readFile(`/proc/${pid}/status`, 'utf8').catch(() => '');
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '');
  if (!status || !stat) return { rssMiB: NaN, cpuMs: NaN };
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 };
}

async function main(): Promise<void> {
  const lines: string[] = [`${new Date().toISOString()}  ${process.execPath} ${process.version}, load average ${(await run('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')}`];
  const keys = await soakKeys(KEYS);
  lines.push(...keyReport(keys, KEYS));
  process.stdout.write(lines.join('\n') + '\n');
  if (keys.hung || LOGINS === 0) return;

  const build = await run('npm', ['run', 'build'], { cwd: ROOT });
  if (build.failed) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  const students = PARALLEL * 2;
  const gw = await createGatewayFixture({ index: 62, students, standby: students, max: students + 2, useDist: true, graceSeconds: 3600 });
  try {
    const results: { ok: boolean; ms: number; error?: string }[] = [];
    const samples: { after: number; rssMiB: number; cpuMs: number; at: number }[] = [{ after: 0, ...(await agentStats(gw.agent?.pid)), at: performance.now() }];
    let next = 0;
    const worker = async (w: number) => {
      for (let turn = 0; ; turn++) {
        const i = next++;
        if (i >= LOGINS) return;
        // Each worker alternates between its two students: one login of a student at a time.
        results[i] = await sshLogin(gw, gw.students[w * 2 + (turn % 2)]!);
        if ((i + 1) % BLOCK === 0) samples.push({ after: i + 1, ...(await agentStats(gw.agent?.pid)), at: performance.now() });
      }
    };
    await Promise.all(Array.from({ length: PARALLEL }, (_, w) => worker(w)));
    const failed = results.filter((r) => !r.ok);
    const block = (from: number) => results.slice(from, from + BLOCK).filter((r) => r.ok).map((r) => r.ms);
    const first = block(0);
    const last = block(Math.max(0, LOGINS - BLOCK));
    const s0 = samples[0]!;
    const s1 = samples[1] ?? s0;
    const sN = samples[samples.length - 1]!;
    const sM = samples[samples.length - 2] ?? s0;
    const cpuPer = (a: typeof s0, b: typeof s0) => fmtMs((b.cpuMs - a.cpuMs) / Math.max(1, b.after - a.after));
    const out = [
      `${LOGINS} logins through one session agent, ${PARALLEL} at a time: ${LOGINS - failed.length}/${LOGINS} succeeded in ${fmtMs(sN.at - s0.at)}`,
      `  start (logins 1-${BLOCK}): p50 ${fmtMs(percentile(first, 50))} p95 ${fmtMs(percentile(first, 95))} p99 ${fmtMs(percentile(first, 99))}; agent rss ${s0.rssMiB.toFixed(1)} MiB before, ${s1.rssMiB.toFixed(1)} MiB after; agent CPU ${cpuPer(s0, s1)} per login`,
      `  end   (last ${BLOCK}):    p50 ${fmtMs(percentile(last, 50))} p95 ${fmtMs(percentile(last, 95))} p99 ${fmtMs(percentile(last, 99))}; agent rss ${sN.rssMiB.toFixed(1)} MiB; agent CPU ${cpuPer(sM, sN)} per login`,
      ...failed.slice(0, 3).map((r) => `  failed: ${r.error}`),
    ];
    const agent = gw.agent;
    if (agent && (agent.exitCode !== null || agent.signalCode !== null)) {
      const gone = samples.find((s) => Number.isNaN(s.rssMiB));
      out.push(`  the session agent exited (${agent.exitCode ?? agent.signalCode})${gone ? ` before login ${gone.after}` : ''}; its last lines:`);
      out.push(...gw.agentLog().trim().split('\n').slice(-8).map((l) => `    ${l.slice(0, 400)}`));
      process.exitCode = 1;
    }
    process.stdout.write(out.join('\n') + '\n');
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await gw.close();
  }
}

await main();
