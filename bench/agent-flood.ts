/**
 * One session agent serves every login of a gateway: does a student who floods their terminal
 * slow down everybody else? Measures the round trip of a line typed by student A (sent through
 * the gateway to `cat` in A's container and echoed back) while student B's session pours output
 * as fast as it can, against the same without B, and reports B's throughput.
 *   node --import tsx bench/agent-flood.ts [ECHOES=200] [FLOOD_MB=400] [--no-agent]
 * --no-agent runs the same with one standalone session process per login, for comparison.
 * Runs against a whole gateway on this machine (test/shell/gateway-fixture.ts, bridge vzsbt43).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { run } from '../src/common/exec.js';
import { createGatewayFixture, type GatewayFixture } from '../test/shell/gateway-fixture.js';
import { fmtMs, percentile } from './stats.js';

const numbers = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const ECHOES = Number(numbers[0] ?? 200);
const FLOOD_MB = Number(numbers[1] ?? 400);
const AGENT = !process.argv.includes('--no-agent');
const ROOT = fileURLToPath(new URL('../', import.meta.url));

/** A session running `cat` without a PTY: each line written comes back. */
async function echoSession(gw: GatewayFixture, user: string): Promise<{ rtt(): Promise<number>; end(): Promise<void> }> {
  const child: ChildProcessWithoutNullStreams = spawn('ssh', [...gw.sshArgs(user), 'echo ready; exec cat']);
  let buffered = '';
  let waiter: (() => void) | undefined;
  child.stdout.on('data', (d: Buffer) => {
    buffered += d.toString();
    waiter?.();
  });
  const until = (text: string) =>
    new Promise<void>((resolve) => {
      const check = () => {
        const at = buffered.indexOf(text);
        if (at < 0) return;
        buffered = buffered.slice(at + text.length);
        waiter = undefined;
        resolve();
      };
      waiter = check;
      check();
    });
  await until('ready\n');
  let n = 0;
  return {
    rtt: async () => {
      const line = `ping-${n++}\n`;
      const t0 = performance.now();
      child.stdin.write(line);
      await until(line);
      return performance.now() - t0;
    },
    end: async () => {
      child.stdin.end();
      await once(child, 'close');
    },
  };
}

async function echoes(session: { rtt(): Promise<number> }): Promise<number[]> {
  const out: number[] = [];
  for (let i = 0; i < ECHOES; i++) out.push(await session.rtt());
  return out;
}

async function main(): Promise<void> {
  await run('npm', ['run', 'build'], { cwd: ROOT });
  const gw = await createGatewayFixture({ index: 43, students: 2, standby: 2, max: 4, useDist: true, agent: AGENT });
  try {
    const [a, b] = gw.students as [string, string];
    const session = await echoSession(gw, a);
    await echoes(session); // warm-up
    const quiet = await echoes(session);

    const started = performance.now();
    const flood = spawn('ssh', [...gw.sshArgs(b), `head -c ${FLOOD_MB}M /dev/zero`], { stdio: ['ignore', 'pipe', 'inherit'] });
    let bytes = 0;
    flood.stdout.on('data', (d: Buffer) => (bytes += d.length));
    const floodDone = once(flood, 'close').then(() => performance.now() - started);
    // Measure once B's output is flowing.
    while (bytes === 0) await new Promise((r) => setImmediate(r));
    const loaded = await echoes(session);
    const floodMs = await floodDone;
    await session.end();

    const p = (xs: number[], q: number) => fmtMs(percentile(xs, q));
    process.stdout.write(
      [
        `${new Date().toISOString()}  load average ${(await run('cat', ['/proc/loadavg'])).stdout.split(' ').slice(0, 3).join(' ')}; sessions ${AGENT ? 'through the session agent' : 'as standalone processes (no agent)'}`,
        `A's line round trip through the gateway, ${ECHOES} lines:`,
        `  alone:                 p50 ${p(quiet, 50)}  p95 ${p(quiet, 95)}  p99 ${p(quiet, 99)}`,
        `  while B floods:        p50 ${p(loaded, 50)}  p95 ${p(loaded, 95)}  p99 ${p(loaded, 99)}`,
        `B's flood: ${(bytes / 1e6).toFixed(0)} MB in ${fmtMs(floodMs)} (${(bytes / 1e6 / (floodMs / 1000)).toFixed(0)} MB/s through the container's sshd, the gateway and its sshd)`,
      ].join('\n') + '\n',
    );
  } finally {
    await gw.close();
  }
}

await main();
