import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createGatewayFixture, type GatewayFixture } from './gateway-fixture.js';

/**
 * Parallel logins of one student, end to end (LXC, real sshd, the session agent): each login's
 * one-time key is one session of the lease at the hypervisor, and the container accepts every
 * live session's key, so none overwrites another's. Unique to this file: bridge vzsbt80 /
 * 10.231.80.0/24, containers "vzg80-N", users vzst80u*, vzso80, vzsbgw80.
 */
const INDEX = 80;
let gw: GatewayFixture;

test.before(async () => {
  gw = await createGatewayFixture({ index: INDEX, students: 1, standby: 2, max: 4 });
});

test.after.always(async () => {
  await gw?.close();
});

function ssh(user: string, command: string): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn('ssh', [...gw.sshArgs(user), command], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  return once(child, 'exit').then(([code]) => ({ code: code as number | null, stdout, stderr }));
}

async function leases(): Promise<{ user: string; container: string }[]> {
  const res = await fetch(`${gw.hypervisorUrl}/v1/leases`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
  return ((await res.json()) as { leases: { user: string; container: string }[] }).leases;
}

test('5 parallel logins of one student all get in, in the same container; the lease ends with the last', async (t) => {
  const student = gw.students[0]!;
  // Each one stays a moment, so all five sessions are open together.
  const runs = await Promise.all(Array.from({ length: 5 }, (_, i) => ssh(student, `echo "IN=$(id -u) HOST=$(hostname) N=${i}"; sleep 2`)));
  for (const [i, r] of runs.entries()) {
    t.is(r.code, 0, `login ${i}: ${r.stderr}`);
    t.regex(r.stdout, new RegExp(`IN=0 HOST=vzg${INDEX}-\\d+ N=${i}`), `login ${i}`);
  }
  const hosts = new Set(runs.map((r) => /HOST=(\S+)/.exec(r.stdout)?.[1]));
  t.is(hosts.size, 1, `one container for the student: ${[...hosts].join(', ')}`);
  // Every session ended: the lease with the last one (grace 0).
  const until = Date.now() + 20_000;
  while ((await leases()).some((l) => l.user === student) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
  t.false((await leases()).some((l) => l.user === student), 'released after the last session');
  const logouts = (await gw.logLines()).filter((l) => l.event === 'logout' && l.user === student);
  t.is(logouts.length, 5);
  t.is(logouts.filter((l) => l.released === true).length, 1, 'one logout ended the lease, the others left it to the rest');
});
