import test from 'ava';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { connect } from 'node:net';
import { run } from '../../src/common/exec.js';
import { encodeFrame, encodeHello } from '../../src/shell/agent-protocol.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { createGatewayFixture, type GatewayFixture } from './gateway-fixture.js';
import { createTerminals, type Terminals } from './terminal.js';

/**
 * The gateway login shell end to end: a student's `ssh` to a real sshd on loopback whose
 * login shell is the vzsb-shell wrapper, sudo to the service user, a lease from a real
 * hypervisor daemon (LXC driver), the container's sshd on a private bridge. Unique to this
 * file: bridge vzsbt41 / 10.231.41.0/24, containers "vzg41-N", users vzst41u*, vzso41, vzsbgw41.
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
  // A program that exits without reading its input (EPIPE) is not an error of the test.
  child.stdin.on('error', () => {});
  child.stdin.end(input);
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stdout, stderr };
}

/** Like spawnCollect, but the output is not read for the first `holdMs` (a slow terminal or pipe). */
async function slowReader(file: string, args: string[], holdMs: number): Promise<Ran> {
  const child = spawn(file, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.pause();
  const held = setTimeout(() => child.stdout.resume(), holdMs);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code] = (await once(child, 'close')) as [number | null];
  clearTimeout(held);
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
  t.like(logins[0], { container, request: 'interactive', via: 'agent' });
  t.regex(String(logins[0]!.source), /^127\.0\.0\.1 \d+$/);
  t.true(typeof logins[0]!.leaseMs === 'number' && typeof logins[0]!.connectMs === 'number');
  const logouts = log.filter((l) => l.event === 'logout' && l.user === alice);
  t.deepEqual(logouts.map((l) => [l.status, l.released]), [[3, 'kept for 1 other session(s)'], [7, true]]);
  t.true(log.some((l) => l.event === 'balancer.failover'), 'the dead first balancer was skipped');
  t.false(JSON.stringify(log).includes(gw.leaseToken), 'no token in the log');
});

test.serial('exec mode: `ssh gateway cmd` relays stdin, stdout, stderr and the exit status, without a PTY', async (t) => {
  const bob = gw.students[1]!;
  const ran = await ssh(bob, 'echo "out $(id -u) $(hostname)"; echo err >&2; test -t 0 || echo no-tty; exit 5');
  t.is(ran.code, 5, ran.stderr);
  t.regex(ran.stdout, /^out 0 vzg41-\d+\nno-tty\n$/);
  t.is(ran.stderr, 'err\n', 'no progress lines without a terminal');
  const piped = await ssh(bob, 'wc -c; exit 0', 'x'.repeat(100_000));
  t.is(piped.code, 0, piped.stderr);
  t.is(piped.stdout.trim(), '100000');
  // A lot of output right before the exit, read slowly by the student's side: all of it
  // arrives, then the status (the output queued on the gateway goes out before the exit).
  const flood = await slowReader('ssh', [...gw.sshArgs(bob), 'seq 1 300000; exit 3'], 1500);
  t.is(flood.code, 3, flood.stderr);
  t.is(flood.stdout.length, 1_988_895);
  t.true(flood.stdout.endsWith('\n299999\n300000\n'));
  // `ssh -T gateway` with a script on stdin: a shell without a PTY.
  const script = await ssh(bob, undefined, 'echo "in $(hostname)"\nexit 4\n', ['-T']);
  t.is(script.code, 4, script.stderr);
  t.regex(script.stdout, /^in vzg41-\d+\n$/);
  // `ssh -t gateway cmd` gets a PTY.
  const tty = await ssh(bob, 'test -t 0 && echo has-tty', '', ['-tt']);
  t.regex(tty.stdout, /has-tty/);
  t.false((await leases()).some((l) => l.user === bob), 'released after each command');
});

test.serial('sftp and scp reach the container', async (t) => {
  const carol = gw.students[2]!;
  const local = join(gw.work, 'transfer');
  await mkdir(local, { recursive: true });
  await writeFile(join(local, 'up.txt'), 'payload 42\n');
  // Keep a terminal open so every transfer lands in the same container.
  await terms.open('c1', ['ssh', '-tt', ...gw.sshArgs(carol)], { cols: 80, rows: 24 });
  await terms.waitFor('c1', PROMPT, 60_000);
  const port = ['-P', String(gw.sshPort)];
  const sftp = await spawnCollect('sftp', [...gw.sshOptions, ...port, '-b', '-', `${carol}@127.0.0.1`], `put ${join(local, 'up.txt')} /root/up.txt\nget /root/up.txt ${join(local, 'back.txt')}\n`);
  t.is(sftp.code, 0, sftp.stderr);
  t.is(await readFile(join(local, 'back.txt'), 'utf8'), 'payload 42\n');
  const scp = await spawnCollect('scp', [...gw.sshOptions, ...port, join(local, 'up.txt'), `${carol}@127.0.0.1:/root/scp.txt`]);
  t.is(scp.code, 0, scp.stderr);
  const legacy = await spawnCollect('scp', ['-O', ...gw.sshOptions, ...port, `${carol}@127.0.0.1:/root/scp.txt`, join(local, 'legacy.txt')]);
  t.is(legacy.code, 0, legacy.stderr);
  t.is(await readFile(join(local, 'legacy.txt'), 'utf8'), 'payload 42\n');
  await terms.type('c1', 'echo "FILES=$(cat /root/up.txt /root/scp.txt | wc -l)"');
  t.is((await terms.waitFor('c1', /FILES=(\d+)/))[1], '2');
  await terms.type('c1', 'exit');
  t.is(await terms.exitStatus('c1'), 0);
});

test.serial('the student cannot read the token, signal the session, or lease in another name', async (t) => {
  const [alice, bob] = gw.students as [string, string];
  const { setup } = gw;
  // Earlier tests' logins are in the same log, and a reset container's id is used again.
  const logStart = (await gw.logLines()).length;
  // A live session of bob's, to look at from alice's account.
  await terms.open('b1', ['ssh', '-tt', ...gw.sshArgs(bob)], { cols: 80, rows: 24 });
  await terms.waitFor('b1', PROMPT, 60_000);
  await terms.type('b1', 'echo "HB=$(hostname)"');
  const bobContainer = (await terms.waitFor('b1', /HB=([a-z][\w-]+)/))[1]!;

  const read = await asUser(alice, ['cat', setup.configPath]);
  t.not(read.code, 0);
  t.regex(read.stderr, /Permission denied/);
  t.false(read.stdout.includes(gw.leaseToken));

  // The session agent and the login's client both run as the service user.
  const pids = (await run('pgrep', ['-u', setup.serviceUser, '-f', 'shell/main|vzsb-client'])).stdout.trim().split('\n').filter(Boolean);
  t.true(pids.length >= 2, 'the agent and bob\'s client run as the service user');
  for (const pid of pids) {
    const environ = await asUser(alice, ['cat', `/proc/${pid}/environ`]);
    t.not(environ.code, 0, `environ of ${pid}`);
    t.false(environ.stdout.includes(gw.leaseToken));
    const mem = await asUser(alice, ['dd', `if=/proc/${pid}/mem`, 'bs=1', 'count=1', 'skip=4096']);
    t.not(mem.code, 0);
    // sudo execs the client in place: no sudo process relays a signal from the student.
    const kill = await asUser(alice, ['kill', '-USR1', pid]);
    t.not(kill.code, 0);
    t.regex(kill.stderr, /Operation not permitted/);
  }

  // The agent's socket is the service user's: a student cannot talk to it directly, and the
  // client run without sudo cannot either (it does not fall back to a session of its own then).
  const socket = join(setup.gateway.sessionsDir, 'agent.sock');
  const direct = await asUser(alice, [process.execPath, '-e', `require('net').connect(${JSON.stringify(socket)}).on('connect', () => process.exit(0)).on('error', (e) => { console.error(e.code); process.exit(3); })`]);
  t.is(direct.code, 3);
  t.regex(direct.stderr, /EACCES/);
  const bypass = await asUser(alice, [setup.clientPath], { SUDO_USER: bob, VZSB_HAS_COMMAND: '1', VZSB_COMMAND: 'hostname' });
  t.is(bypass.code, 255);
  t.regex(bypass.stderr, /\[E_INTERNAL\]/);
  t.is(bypass.stdout, '');

  // sudo -l names exactly the client, without arguments, nothing else.
  const list = await asUser(alice, ['sudo', '-n', '-l']);
  t.is(list.code, 0, list.stderr);
  t.regex(list.stdout, new RegExp(`\\(${setup.serviceUser}\\) NOPASSWD: ${escapeRe(setup.clientPath)} ""`));
  t.is(list.stdout.match(/NOPASSWD/g)?.length, 1);
  t.false(list.stdout.includes(gw.leaseToken));
  const refused: string[][] = [
    ['sudo', '-n', '-u', setup.serviceUser, '--', '/bin/cat', setup.configPath],
    ['sudo', '-n', '-u', 'root', '--', '/bin/true'],
    ['sudo', '-n', '-u', setup.serviceUser, '--', setup.clientPath, '--config', '/tmp/other.yaml'],
    ['sudo', '-n', '-u', setup.serviceUser, '--', ...setup.sessionCommand],
    ['sudo', '-n', '--preserve-env=SUDO_USER', '-u', setup.serviceUser, '--', setup.clientPath],
    ['sudo', '-n', '-E', '-u', setup.serviceUser, '--', setup.clientPath],
    ['sudo', '-n', 'PERL5OPT=-d', '-u', setup.serviceUser, '--', setup.clientPath],
  ];
  for (const argv of refused) {
    const r = await asUser(alice, argv, { SUDO_USER: bob, PERL5LIB: '/tmp', PERL5OPT: '-Mstrict' });
    t.not(r.code, 0, argv.join(' '));
    t.false((r.stdout + r.stderr).includes(gw.leaseToken));
  }

  // SUDO_USER set by the student does not survive sudo: the session is alice's, in alice's container.
  // Nor do Perl's variables: a module of the student's in PERL5LIB is never loaded by the client.
  const evil = join(gw.work, 'evil-perl');
  await mkdir(evil, { recursive: true });
  await writeFile(join(evil, 'POSIX.pm'), 'print "EVIL\\n"; 1;\n');
  await writeFile(join(evil, 'Evil.pm'), 'print "EVIL\\n"; 1;\n');
  const forged = await asUser(alice, [setup.wrapperPath, '-c', 'hostname; echo "U=$SUDO_USER"'], { SUDO_USER: bob, USER: bob, LOGNAME: bob, PERL5LIB: evil, PERLLIB: evil, PERL5OPT: '-MEvil' });
  t.is(forged.code, 0, forged.stderr);
  t.false(forged.stdout.includes('EVIL'));
  const control = await spawnCollect('perl', ['-e', 'use POSIX ();'], '', { ...process.env, PERL5LIB: evil });
  t.regex(control.stdout, /EVIL/, 'the module would be loaded if the variable reached perl');
  const aliceContainer = forged.stdout.split('\n')[0]!;
  t.regex(aliceContainer, /^vzg41-\d+$/);
  t.not(aliceContainer, bobContainer);
  const log = (await gw.logLines()).slice(logStart);
  t.true(log.some((l) => l.event === 'login' && l.user === alice && l.container === aliceContainer));
  t.false(log.some((l) => l.event === 'login' && l.user === bob && l.container === aliceContainer));

  // Someone outside the students' group gets nothing.
  const outsider = await asUser(gw.outsider, [setup.wrapperPath, '-c', 'hostname']);
  t.not(outsider.code, 0);
  t.regex(outsider.stderr, /sudo/);
  t.false((await leases()).some((l) => l.user === gw.outsider));

  await terms.type('b1', 'exit');
  t.is(await terms.exitStatus('b1'), 0);
});

test.serial('a container presenting another host key is refused with E_HOSTKEY', async (t) => {
  // A balancer stand-in that forwards to the hypervisor but reports another key's fingerprint.
  const wrong = generateEd25519('not-the-container').fingerprint;
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', async () => {
      const upstream = await fetch(gw.hypervisorUrl + req.url, { method: req.method, headers: { authorization: req.headers.authorization!, 'content-type': 'application/json' }, body: req.method === 'POST' ? Buffer.concat(chunks) : undefined });
      const body = (await upstream.json()) as Record<string, unknown>;
      if (req.method === 'POST' && upstream.status === 200) {
        body.hostKeyFingerprint = wrong;
        delete body.hostKey;
      }
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(body));
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  await gw.writeConfig({ balancers: [`http://127.0.0.1:${port}`] });
  t.teardown(() => gw.restoreConfig());

  const alice = gw.students[0]!;
  const ran = await ssh(alice, 'echo should-not-run');
  t.is(ran.code, 255);
  t.is(ran.stdout, '');
  t.regex(ran.stderr, /\[E_HOSTKEY\]/);
  const failed = (await gw.logLines()).filter((l) => l.event === 'login.failed' && l.code === 'E_HOSTKEY');
  t.is(failed.length, 1);
  t.regex(String(failed[0]!.details), new RegExp(`expected ${escapeRe(wrong)}`));
  t.false((await leases()).some((l) => l.user === alice), 'the lease was released');
});

test.serial('no balancer answers: E_BALANCER_DOWN within the configured time', async (t) => {
  // Ports below 1024 that nothing here listens on: a port that was free a moment ago may be
  // another test's listener by the time the login asks (that answered 401: E_GATEWAY_AUTH).
  const dead = ['http://127.0.0.1:1023', 'http://127.0.0.2:1022'];
  await gw.writeConfig({ balancers: dead, timeouts: { leaseMs: 1500, releaseMs: 300 } });
  t.teardown(() => gw.restoreConfig());
  const started = performance.now();
  const ran = await ssh(gw.students[0]!, 'true');
  const ms = performance.now() - started;
  t.is(ran.code, 255);
  t.regex(ran.stderr, /does not answer.*\[E_BALANCER_DOWN\]/);
  t.true(ms < 6000, `${ms} ms`);
  const failed = (await gw.logLines()).filter((l) => l.event === 'login.failed' && l.code === 'E_BALANCER_DOWN');
  t.is(failed.length, 1);
  t.regex(String(failed[0]!.details), /ECONNREFUSED/);
});

test.serial('SIGTERM and a hang-up end the session cleanly: status 128+n, logout logged, lease released', async (t) => {
  const carol = gw.students[2]!;
  const sessionPid = async (): Promise<number> => {
    const dir = join(gw.setup.gateway.sessionsDir, carol);
    return until(async () => {
      const names = (await readdir(dir).catch(() => [] as string[])).map(Number).filter((n) => n > 0);
      return names.length === 1 ? names[0] : undefined;
    }, 'a session marker');
  };
  const logout = (pid: number) => until(async () => (await gw.logLines()).find((l) => l.event === 'logout' && l.pid === pid), `logout of ${pid}`);

  await terms.open('c2', ['ssh', '-tt', ...gw.sshArgs(carol)], { cols: 80, rows: 24 });
  await terms.waitFor('c2', PROMPT, 60_000);
  const first = await sessionPid();
  process.kill(first, 'SIGTERM');
  t.is(await terms.exitStatus('c2'), 143);
  t.like(await logout(first), { user: carol, endedBy: 'SIGTERM', status: 143, released: true });
  t.false((await leases()).some((l) => l.user === carol));

  // The student's ssh client goes away: sshd hangs up the terminal, the session gets SIGHUP.
  await terms.open('c3', ['ssh', '-tt', ...gw.sshArgs(carol)], { cols: 80, rows: 24 });
  await terms.waitFor('c3', PROMPT, 60_000);
  const second = await sessionPid();
  await run('tmux', ['-L', `vzsb-test${INDEX}`, 'kill-session', '-t', 'c3']);
  t.like(await logout(second), { user: carol, endedBy: 'SIGHUP', status: 129, released: true });
  t.false((await leases()).some((l) => l.user === carol));
  t.deepEqual(await readdir(join(gw.setup.gateway.sessionsDir, carol)), [], 'no session marker left');
});

test.serial('more sessions than allowed per user are refused with E_TOO_MANY', async (t) => {
  await gw.writeConfig({ maxSessionsPerUser: 1 });
  t.teardown(() => gw.restoreConfig());
  const carol = gw.students[2]!;
  await terms.open('c4', ['ssh', '-tt', ...gw.sshArgs(carol)], { cols: 80, rows: 24 });
  await terms.waitFor('c4', PROMPT, 60_000);
  const second = await ssh(carol, 'echo should-not-run');
  t.is(second.code, 255);
  t.regex(second.stderr, /too many sessions.*\[E_TOO_MANY\]/);
  await terms.type('c4', 'echo "STILL=$(id -u)"');
  t.is((await terms.waitFor('c4', /STILL=(\d+)/))[1], '0', 'the refused login did not release the open session\'s lease');
  t.true((await leases()).some((l) => l.user === carol));
  await terms.type('c4', 'exit');
  t.is(await terms.exitStatus('c4'), 0);
});

test.serial('Ctrl-C while waiting for the sandbox ends the login and releases what may have been granted', async (t) => {
  // A balancer stand-in that holds lease requests forever and records releases.
  const released: string[] = [];
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    if (req.method === 'DELETE') {
      released.push(req.url!);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    }
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.closeAllConnections();
    server.close();
  });
  await gw.writeConfig({ balancers: [`http://127.0.0.1:${(server.address() as { port: number }).port}`] });
  t.teardown(() => gw.restoreConfig());
  const alice = gw.students[0]!;
  await terms.open('a3', ['ssh', '-tt', ...gw.sshArgs(alice)], { cols: 80, rows: 24 });
  await terms.waitFor('a3', /Requesting a sandbox\.\.\./);
  await terms.keys('a3', 'C-c');
  t.is(await terms.exitStatus('a3', 10_000), 130);
  t.is(released.length, 1);
  t.regex(released[0]!, new RegExp(`^/v1/leases/${alice}\\?session=[^&]+$`), 'its session, which may have been granted');
});

test.serial('without the session agent logins run as their own session processes; open sessions outlive a stopping agent', async (t) => {
  const [alice, bob] = gw.students as [string, string];
  const socket = join(gw.setup.gateway.sessionsDir, 'agent.sock');
  const via = async (user: string) => (await gw.logLines()).filter((l) => l.event === 'login' && l.user === user).at(-1)?.via;

  // An open session through the agent...
  await terms.open('a4', ['ssh', '-tt', ...gw.sshArgs(alice)], { cols: 80, rows: 24 });
  await terms.waitFor('a4', PROMPT, 60_000);
  t.is(await via(alice), 'agent');
  // ...keeps working while the agent drains: it stops listening at once and exits after the last session.
  const stopped = gw.stopAgent();
  await until(async () => ((await readdir(gw.setup.gateway.sessionsDir)).includes('agent.sock') ? undefined : true), 'the socket to go');
  const during = await ssh(bob, 'echo "D=$(id -u)"; exit 6');
  t.is(during.code, 6, during.stderr);
  t.is(during.stdout, 'D=0\n');
  t.is(await via(bob), undefined, 'a standalone session process');
  await terms.type('a4', 'echo "STILL=$(id -u)"');
  t.is((await terms.waitFor('a4', /STILL=(\d+)/))[1], '0');
  t.is(gw.agent?.exitCode, null, 'the agent waits for its session');
  await terms.type('a4', 'exit 2');
  t.is(await terms.exitStatus('a4'), 2);
  t.is(await stopped, 0);

  // Back with an agent: logins go through it again.
  await gw.startAgent();
  t.true((await readdir(gw.setup.gateway.sessionsDir)).includes('agent.sock'), socket);
  const after = await ssh(bob, 'echo "A=$(id -u)"');
  t.is(after.code, 0, after.stderr);
  t.is(await via(bob), 'agent');
});

test.serial('the session agent survives broken and hostile clients', async (t) => {
  const socket = join(gw.setup.gateway.sessionsDir, 'agent.sock');
  const talk = (bytes: Buffer) =>
    new Promise<string>((resolve) => {
      const sock = connect(socket);
      let got = '';
      sock.on('data', (d: Buffer) => (got += d.toString('latin1')));
      sock.on('close', () => resolve(got));
      sock.on('error', () => {});
      sock.write(bytes);
    });
  // Garbage, a frame too big, a hello with a forged version, data before the hello: each is dropped without an answer.
  t.is(await talk(Buffer.from('GET / HTTP/1.1\r\n\r\n')), '');
  t.is(await talk(Buffer.from([0x49, 0xff, 0xff, 0xff, 0xff])), '');
  t.is(await talk(encodeFrame('H', encodeHello({ v: 9, pid: 4242 }))), '');
  t.is(await talk(encodeFrame('I', 'ls\n')), '');
  // A hello naming no user: the session refuses it like the standalone process would, with an exit frame.
  const anonymous = await talk(encodeFrame('H', encodeHello({ v: 1, pid: 4242, tty: '000' })));
  t.regex(anonymous, /\[E_IDENTITY\]/);
  t.regex(anonymous, /x\0\0\0\x03255$/);
  t.is(gw.agent?.exitCode, null);
  const after = await ssh(gw.students[0]!, 'echo ok');
  t.is(after.code, 0, after.stderr);
  t.is(after.stdout, 'ok\n');
});

/** Poll `probe` until it returns a value (bounded). */
async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  let delay = 20;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(250, delay * 2);
  }
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}
