import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { createGatewayFixture, freePort, type GatewayFixture } from './gateway-fixture.js';
import { createTerminals, type Terminals } from './terminal.js';

/**
 * The gateway login shell end to end: a student's `ssh` to a real sshd on loopback whose
 * login shell is the vzsb-shell wrapper, sudo to the service user, a lease from a real
 * hypervisor daemon (LXC driver), the container's sshd on a private bridge. Unique to this
 * file: bridge vzsbt41 / 10.231.41.0/24, containers "vzg41-N", users vzst41*, vzso41, vzsbgw41.
 */
const INDEX = 41;
let gw: GatewayFixture;
let terms: Terminals;

test.serial.before(async () => {
  gw = await createGatewayFixture({ index: INDEX, students: 3, standby: 2, max: 6, deadBalancerFirst: true });
  terms = await createTerminals(`vzsb-test${INDEX}`);
});

test.serial.after.always(async () => {
  await terms?.close();
  await gw?.close();
});

interface Ran {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ssh(user: string, command: string | undefined, input = '', extra: string[] = []): Promise<Ran> {
  return spawnCollect('ssh', [...gw.sshArgs(user, extra), ...(command === undefined ? [] : [command])], input);
}

async function spawnCollect(file: string, args: string[], input = '', env?: NodeJS.ProcessEnv): Promise<Ran> {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'], env: env ?? process.env });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** As the student, without sshd: what a student with a shell on the gateway could try. */
function asUser(user: string, argv: string[], env: Record<string, string> = {}): Promise<Ran> {
  return spawnCollect('runuser', ['-u', user, '--', 'env', ...Object.entries(env).map(([k, v]) => `${k}=${v}`), ...argv]);
}

async function leases(): Promise<{ user: string; container: string }[]> {
  const res = await fetch(`${gw.hypervisorUrl}/v1/leases`, { headers: { authorization: `Bearer ${gw.adminToken}` } });
  const body = (await res.json()) as { leases: { user: string; container?: string; id?: string }[] };
  return body.leases.map((l) => ({ user: l.user, container: (l.container ?? l.id)! }));
}

const PROMPT = /root@vzg41-\d+:[^\n]*# $/m;

test.serial('interactive login: a root prompt in a container, window size and resize, Ctrl-C, a second terminal, exit status', async (t) => {
  const [alice] = gw.students;
  await terms.open('a1', ['ssh', '-tt', ...gw.sshArgs(alice!)], { cols: 100, rows: 30 });
  await terms.waitFor('a1', /Requesting a sandbox\.\.\./);
  await terms.waitFor('a1', PROMPT, 60_000);
  await terms.type('a1', 'echo "ID=$(id -u) HN=$(hostname) SZ=$(stty size)"');
  const first = await terms.waitFor('a1', /ID=(\d+) HN=([a-z][\w-]+) SZ=(\d+ \d+)/);
  t.is(first[1], '0');
  t.is(first[3], '30 100');
  const container = first[2]!;
  t.regex(container, /^vzg41-\d+$/);
  t.deepEqual((await leases()).filter((l) => l.user === alice), [{ user: alice!, container }]);

  await terms.resize('a1', { cols: 120, rows: 40 });
  await terms.type('a1', 'echo "SZ2=$(stty size)"');
  t.is((await terms.waitFor('a1', /SZ2=(\d+ \d+)/))[1], '40 120');

  // Ctrl-C is a byte through the PTY: it interrupts the remote command, not the session.
  await terms.type('a1', 'sleep 300');
  await terms.keys('a1', 'C-c');
  await terms.type('a1', 'echo "AFTER=$?"');
  t.is((await terms.waitFor('a1', /AFTER=(\d+)/))[1], '130');

  // A second terminal of the same student lands in the same container.
  await terms.open('a2', ['ssh', '-tt', ...gw.sshArgs(alice!)], { cols: 80, rows: 24 });
  await terms.waitFor('a2', PROMPT, 60_000);
  await terms.type('a2', 'echo "HN2=$(hostname)"');
  t.is((await terms.waitFor('a2', /HN2=([a-z][\w-]+)/))[1], container);
  await terms.type('a2', 'exit 3');
  t.is(await terms.exitStatus('a2'), 3);
  // The first session still works and still holds the lease.
  await terms.type('a1', 'echo "STILL=$(hostname)"');
  t.is((await terms.waitFor('a1', /STILL=([a-z][\w-]+)/))[1], container);
  t.true((await leases()).some((l) => l.user === alice));

  await terms.type('a1', 'exit 7');
  t.is(await terms.exitStatus('a1'), 7);
  t.false((await leases()).some((l) => l.user === alice), 'the last logout released the lease');

  const log = await gw.logLines();
  const logins = log.filter((l) => l.event === 'login' && l.user === alice);
  t.is(logins.length, 2);
  t.like(logins[0], { container, request: 'interactive' });
  t.regex(String(logins[0]!.source), /^127\.0\.0\.1 \d+$/);
  t.true(typeof logins[0]!.leaseMs === 'number' && typeof logins[0]!.connectMs === 'number');
  const logouts = log.filter((l) => l.event === 'logout' && l.user === alice);
  t.deepEqual(logouts.map((l) => [l.status, l.released]), [[3, 'kept for 1 other session(s)'], [7, true]]);
  t.true(log.some((l) => l.event === 'balancer.failover'), 'the dead first balancer was skipped');
  t.false(JSON.stringify(log).includes(gw.leaseToken), 'no token in the log');
});
