/**
 * Time to shell at the gateway: from starting a student's login shell (the vzsb-shell wrapper,
 * under a real pseudo-terminal made by script(1), as a real Unix user) to the container's
 * first output byte and to its root prompt. Runs against a whole gateway on this machine
 * (test/shell/gateway-fixture.ts: hypervisor daemon with the LXC driver on a private bridge
 * vzsbt42, sudo, the session process from dist/), then prints p50/p95/p99 for SEQUENTIAL
 * logins one after another and for a BURST of logins at once (one student each), and the
 * Node start-up cost of the login shell's pieces. Targets: p50 < 300 ms, p99 < 1 s; the
 * burst all succeeds with p95 < 2 s.
 *   node --import tsx bench/login.ts [SEQUENTIAL=50] [BURST=30] [--native] [--no-agent]
 * It builds dist/ first so the session runs as installed: through the session agent, or with
 * --no-agent as one standalone session process per login; ssh2 uses its JS crypto, as on a
 * gateway (the bundle alone). --native puts ssh2's native binding beside the bundle for the run.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { run } from '../src/common/exec.js';
import { createGatewayFixture, type GatewayFixture } from '../test/shell/gateway-fixture.js';
import { placeNativeBinding } from './native-binding.js';
import { fmtMs, percentile } from './stats.js';

const flags = new Set(process.argv.slice(2).filter((a) => a.startsWith('--')));
const numbers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const SEQUENTIAL = Number(numbers[0] ?? 50);
const BURST = Number(numbers[1] ?? 30);
const NATIVE = flags.has('--native');
const AGENT = !flags.has('--no-agent');
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const PROMPT = /root@vzg42-\d+:[^\r\n]*# $/;

interface Login {
  ok: boolean;
  firstByteMs: number;
  promptMs: number;
  /** user+system CPU of the gateway side of the login (the whole process tree), ms */
  cpuMs: number;
  error?: string;
}

/** One login under script(1); resolves after the prompt showed and `exit` ended the session. */
function login(gw: GatewayFixture, user: string, timeoutMs = 30_000): Promise<Login> {
  return new Promise((resolve) => {
    const started = performance.now();
    // time(1) reports the CPU of the whole tree: runuser, script, the wrapper, sudo and the session.
    const child = spawn('/usr/bin/time', ['-f', 'CPU %U %S', 'runuser', '-u', user, '--', 'env', 'SHELL=/bin/sh', 'TERM=xterm', 'script', '-qfec', gw.setup.wrapperPath, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let cpuMs = NaN;
    child.stderr.on('data', (d: Buffer) => {
      const m = /CPU (\d+\.\d+) (\d+\.\d+)/.exec(d.toString());
      if (m) cpuMs = (Number(m[1]) + Number(m[2])) * 1000;
    });
    let screen = '';
    let firstByteMs = NaN;
    let promptMs = NaN;
    let settled = false;
    const finish = (ok: boolean, error?: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve({ ok, firstByteMs, promptMs, cpuMs, error });
    };
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      finish(false, `no prompt within ${timeoutMs} ms: ${JSON.stringify(screen.slice(-200))}`);
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      const now = performance.now();
      screen += d.toString('latin1');
      // The gateway's own progress lines come first; any byte after "Connecting to ...\n" is the container's.
      const connecting = /Connecting to [^\r\n]*\.\.\.\r*\n/.exec(screen);
      if (Number.isNaN(firstByteMs) && connecting && screen.length > connecting.index + connecting[0].length) firstByteMs = now - started;
      if (Number.isNaN(promptMs) && PROMPT.test(screen)) {
        promptMs = now - started;
        child.stdin.write('exit\r');
      }
    });
    child.on('close', (code) => finish(!Number.isNaN(promptMs) && code === 0, Number.isNaN(promptMs) ? `exit ${code}: ${JSON.stringify(screen.slice(-300))}` : code === 0 ? undefined : `exit ${code}`));
  });
}

/** user+system CPU of a process so far, ms (from /proc/PID/stat, 100 ticks a second). */
async function cpuOf(pid: number | undefined): Promise<number> {
  if (!pid) return 0;
  const stat = (await run('cat', [`/proc/${pid}/stat`])).stdout;
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

function summary(name: string, results: Login[]): string {
  const ok = results.filter((r) => r.ok);
  const first = ok.map((r) => r.firstByteMs);
  const prompt = ok.map((r) => r.promptMs);
  const p = (xs: number[], q: number) => fmtMs(percentile(xs, q));
  return [
    `${name}: ${ok.length}/${results.length} succeeded`,
    `  first byte from the container: p50 ${p(first, 50)}  p95 ${p(first, 95)}  p99 ${p(first, 99)}  max ${p(first, 100)}`,
    `  root prompt:                   p50 ${p(prompt, 50)}  p95 ${p(prompt, 95)}  p99 ${p(prompt, 99)}  max ${p(prompt, 100)}`,
    `  CPU of a login's own processes (user+system of runuser, script, wrapper, sudo, and the client or standalone session; 10 ms ticks): p50 ${p(ok.map((r) => r.cpuMs).filter(Number.isFinite), 50)}`,
    ...results.filter((r) => !r.ok).slice(0, 3).map((r) => `  failed: ${r.error}`),
  ].join('\n');
}

/** Medians of the phases the session logs with each login, measured from the session's start. */
function phases(name: string, log: Record<string, unknown>[]): string {
  const logins = log.filter((l) => l.event === 'login');
  const med = (k: string) => fmtMs(percentile(logins.map((l) => Number(l[k])), 50));
  return `  ${name} phases (gateway log, medians of ${logins.length}, from the session's start): config read ${med('configMs')}, lease granted ${med('leaseMs')} (the hypervisor's own share ${med('hypervisorMs')}), sshd answered ${med('readyMs')}, ssh connected ${med('connectMs')}`;
}

/** Median wall time of node starting the session program and the whole CLI (each exits at once). */
async function startupCosts(): Promise<string[]> {
  const wall = async (args: string[]) => {
    const xs: number[] = [];
    for (let i = 0; i < 10; i++) xs.push((await run(process.execPath, args)).durationMs);
    return fmtMs(percentile(xs, 50));
  };
  return [
    `node start-up, medians of 10: \`node -e 0\` ${await wall(['-e', '0'])}; session program \`node dist/shell/main.js\` (usage, exits before any session code) ${await wall([join(ROOT, 'dist', 'shell', 'main.js')])}; whole CLI \`node dist/vzsb.mjs --help\` ${await wall([join(ROOT, 'dist', 'vzsb.mjs'), '--help'])}`,
  ];
}

async function main(): Promise<void> {
  // What the gateway role installs: the session bundle made by `npm run build`.
  const build = await run('npm', ['run', 'build'], { cwd: ROOT });
  if (!existsSync(join(ROOT, 'dist', 'shell', 'main.js'))) throw new Error(`npm run build did not produce dist/shell/main.js:\n${build.stdout}${build.stderr}`);
  const unplace = NATIVE ? await placeNativeBinding(ROOT) : async () => {};
  const gw = await createGatewayFixture({ index: 42, students: BURST, standby: BURST, max: BURST + 6, useDist: true, agent: AGENT });
  try {
    await waitForStandby(gw, BURST);
    const lines: string[] = [
      `${new Date().toISOString()}  ${process.execPath} ${process.version}, load average ${(await run('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')}`,
      `sessions: ${AGENT ? 'through the session agent' : 'one standalone session process per login (no agent)'}; ssh2 crypto: ${NATIVE ? 'native binding beside the bundle (--native)' : 'JS (the bundle alone, as installed)'}`,
    ];
    const sequential: Login[] = [];
    const agentCpu0 = await cpuOf(gw.agent?.pid);
    for (let i = 0; i < SEQUENTIAL; i++) {
      sequential.push(await login(gw, gw.students[i % gw.students.length]!));
      await waitForStandby(gw, Math.min(4, BURST));
    }
    const agentCpu1 = await cpuOf(gw.agent?.pid);
    lines.push(summary(`sequential (${SEQUENTIAL})`, sequential));
    if (AGENT) lines.push(`  session agent CPU per login (its whole CPU over the run / logins): ${fmtMs((agentCpu1 - agentCpu0) / SEQUENTIAL)}`);
    const before = (await gw.logLines()).length;
    lines.push(phases('sequential', (await gw.logLines()).slice(0, before)));
    await waitForStandby(gw, BURST);
    const agentCpu2 = await cpuOf(gw.agent?.pid);
    const burst = await Promise.all(gw.students.slice(0, BURST).map((u) => login(gw, u, 60_000)));
    const agentCpu3 = await cpuOf(gw.agent?.pid);
    lines.push(summary(`burst (${BURST} at once)`, burst));
    if (AGENT) lines.push(`  session agent CPU per login (its whole CPU over the burst / logins): ${fmtMs((agentCpu3 - agentCpu2) / BURST)}`);
    lines.push(phases('burst', (await gw.logLines()).slice(before)));
    lines.push(...(await startupCosts()));
    process.stdout.write(lines.join('\n') + '\n');
  } finally {
    await gw.close();
    await unplace();
  }
}

/** Logins in a measurement start from a warm pool, as in class: wait until `n` containers are clean. */
async function waitForStandby(gw: GatewayFixture, n: number, timeoutMs = 180_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const res = await fetch(`${gw.hypervisorUrl}/healthz`);
    const body = (await res.json()) as { capacity: { clean: number } };
    if (body.capacity.clean >= n) return;
    if (performance.now() > deadline) throw new Error(`only ${body.capacity.clean} clean containers after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(200, delay * 2);
  }
}

await main();
