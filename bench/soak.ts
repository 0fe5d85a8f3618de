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
 * containers are not reset between logins, and what is measured is the agent. The agent runs
 * as the gateway role installs it: the session bundle alone, so ssh2 uses its JS crypto
 * (--native puts ssh2's native binding beside the bundle for the run; scripts/build.mjs says
 * why the build leaves it out).
 * --lab runs the logins through a deployed lab of its own instead (vzsb lab, removed at the
 * end): the gateway's own agent service on the gateway's Node (Debian 12's 18).
 *   node --import tsx bench/soak.ts [KEYS] [LOGINS] [PARALLEL] [--native | --lab]
 */
import { spawn } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { run } from '../src/common/exec.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, studentKeyFile } from '../src/lab/index.js';
import { deploy } from '../src/provision/deploy.js';
import { collectingReporter } from '../test/helpers/deploy.js';
import { createGatewayFixture, type GatewayFixture } from '../test/shell/gateway-fixture.js';
import { placeNativeBinding } from './native-binding.js';
import { keyReport, soakKeys } from './soak-keys.js';
import { fmtMs, percentile } from './stats.js';

const numbers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const NATIVE = process.argv.includes('--native');
const LAB = process.argv.includes('--lab');
const KEYS = Number(numbers[0] ?? 100_000);
const LOGINS = Number(numbers[1] ?? 5000);
const PARALLEL = Number(numbers[2] ?? 4);
const BLOCK = Math.min(250, Math.max(1, Math.floor(LOGINS / 4)));
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** Where the logins go: a gateway on this machine (the fixture) or the gateway of a lab. */
interface Target {
  /** what the report names: the agent's Node version and where it runs */
  describe: string;
  students: string[];
  sshArgs(user: string): Promise<string[]>;
  agentStats(): Promise<{ rssMiB: number; cpuMs: number }>;
  /** Why the agent is not the one that started (exited, restarted), with its last lines; '' if it is. */
  agentGone(): Promise<string>;
  close(): Promise<void>;
}

function sshLogin(args: string[], timeoutMs = 60_000): Promise<{ ok: boolean; ms: number; error?: string }> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const child = spawn('ssh', [...args, 'true'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('close', (code) => {
      clearTimeout(timer);
      resolve({ ok: code === 0, ms: performance.now() - t0, ...(code === 0 ? {} : { error: `exit ${code}: ${err.trim().slice(-200)}` }) });
    });
  });
}

/** RSS and CPU time from a process's /proc status and stat texts (NaN when it is gone). */
function procStats(status: string, stat: string): { rssMiB: number; cpuMs: number } {
  if (!status || !stat) return { rssMiB: NaN, cpuMs: NaN };
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return { rssMiB: Number(/VmRSS:\s+(\d+)/.exec(status)?.[1]) / 1024, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 };
}

async function fixtureTarget(students: number): Promise<Target> {
  const build = await run('npm', ['run', 'build'], { cwd: ROOT });
  if (build.failed) throw new Error(`npm run build failed:\n${build.stdout}${build.stderr}`);
  // The gateway role copies dist/shell/main.js alone, and the build leaves the binding out of dist/shell.
  const unplace = NATIVE ? await placeNativeBinding(ROOT) : async () => {};
  const gw: GatewayFixture = await createGatewayFixture({ index: 62, students, standby: students, max: students + 2, useDist: true, graceSeconds: 3600 });
  const pid = gw.agent?.pid;
  return {
    describe: `a gateway on this machine, agent on ${process.version}; ssh2 crypto: ${NATIVE ? 'native binding beside the bundle' : 'JS (as installed on a gateway: the bundle alone)'}`,
    students: gw.students,
    sshArgs: async (user) => gw.sshArgs(user),
    agentStats: async () => procStats(await readFile(`/proc/${pid}/status`, 'utf8').catch(() => ''), await readFile(`/proc/${pid}/stat`, 'utf8').catch(() => '')),
    agentGone: async () => {
      const agent = gw.agent;
      if (!agent || (agent.exitCode === null && agent.signalCode === null)) return '';
      return [`the session agent exited (${agent.exitCode ?? agent.signalCode}); its last lines:`, ...gw.agentLog().trim().split('\n').slice(-8)].join('\n    ');
    },
    close: async () => {
      await gw.close();
      await unplace();
    },
  };
}

/** A lab of its own (removed at the end), deployed with the students and a grace period; the agent is the gateway's service, on the gateway's Node. */
async function labTarget(students: number): Promise<Target> {
  const name = `soak-${process.pid}`;
  await pruneStaleLabs();
  const lab = await createSandboxLab(name, { ownerPid: process.pid });
  try {
    const key = (await run('cat', [`${studentKeyFile(lab)}.pub`])).stdout.trim();
    const names = Array.from({ length: students }, (_, i) => `soak${i + 1}`);
    const { reporter } = collectingReporter();
    const deployed = await deploy({
      inventory: inventoryFile(lab),
      reporter,
      extraVars: { students: names.map((n) => ({ name: n, ssh_keys: [key] })), pool_grace_seconds: 3600, pool_standby: students, pool_max: students + 2 },
    });
    if (deployed.exitCode !== 0) throw new Error(`vzsb deploy of lab ${name} failed (exit ${deployed.exitCode})`);
    const gw = lab.hosts.find((h) => h.groups?.includes('gateways'))!;
    const onGateway = (command: string) =>
      run('ssh', ['-F', 'none', '-i', lab.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'BatchMode=yes', `root@${gw.address}`, command], { timeoutMs: 60_000 });
    const mainPid = async () => (await onGateway('systemctl show -p MainPID --value vzsb-gateway-agent')).stdout.trim();
    const pid = await mainPid();
    const version = (await onGateway('node --version')).stdout.trim();
    // The first login of each student makes their container; the soak measures the agent after that.
    for (const n of names) await sshLogin(await loginArgs(name, n));
    return {
      describe: `the gateway of lab ${name} (vzsb deploy), agent on its Node ${version}; ssh2 crypto: JS (the bundle alone)`,
      students: names,
      sshArgs: (user) => loginArgs(name, user),
      agentStats: async () => {
        const r = await onGateway(`cat /proc/${pid}/status 2>/dev/null; echo '=====' ; cat /proc/${pid}/stat 2>/dev/null`);
        const [status = '', stat = ''] = r.stdout.split('=====\n');
        return procStats(status.trim(), stat.trim());
      },
      agentGone: async () => {
        const now = await mainPid();
        if (now === pid) return '';
        return [`the session agent is not the one that started (pid ${pid}, now ${now || 'none'}); its journal:`, ...(await onGateway('journalctl -u vzsb-gateway-agent --no-pager | tail -n 8')).stdout.trim().split('\n')].join('\n    ');
      },
      close: () => destroyLab(name),
    };
  } catch (err) {
    await destroyLab(name);
    throw err;
  }
}

async function main(): Promise<void> {
  const lines: string[] = [`${new Date().toISOString()}  ${process.execPath} ${process.version}, load average ${(await run('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')}`];
  const keys = await soakKeys(KEYS);
  lines.push(...keyReport(keys, KEYS));
  process.stdout.write(lines.join('\n') + '\n');
  if (keys.hung || LOGINS === 0) return;

  const target = LAB ? await labTarget(PARALLEL * 2) : await fixtureTarget(PARALLEL * 2);
  process.stdout.write(`logins through ${target.describe}\n`);
  try {
    const results: { ok: boolean; ms: number; error?: string }[] = [];
    const samples: { after: number; rssMiB: number; cpuMs: number; at: number }[] = [{ after: 0, ...(await target.agentStats()), at: performance.now() }];
    let next = 0;
    const worker = async (w: number) => {
      for (let turn = 0; ; turn++) {
        const i = next++;
        if (i >= LOGINS) return;
        // Each worker alternates between its two students: one login of a student at a time.
        results[i] = await sshLogin(await target.sshArgs(target.students[w * 2 + (turn % 2)]!));
        if ((i + 1) % BLOCK === 0) samples.push({ after: i + 1, ...(await target.agentStats()), at: performance.now() });
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
    const gone = await target.agentGone();
    if (gone) {
      const at = samples.find((x) => Number.isNaN(x.rssMiB));
      out.push(`  ${gone}${at ? `\n    (gone before login ${at.after})` : ''}`);
      process.exitCode = 1;
    }
    process.stdout.write(out.join('\n') + '\n');
    if (failed.length > 0) process.exitCode = 1;
  } finally {
    await target.close();
  }
}

await main();
