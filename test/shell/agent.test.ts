import test from 'ava';
import { spawn } from 'node:child_process';
import { chmod, mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/common/exec.js';
import { encodeFrame, encodeHello, FrameDecoder, FrameError, parseHello, parseWindow } from '../../src/shell/agent-protocol.js';
import { startAgent, type Agent } from '../../src/shell/agent.js';
import { defaultSetupOptions, renderGatewayFiles, type GatewaySettings } from '../../src/shell/setup.js';
import { reply, stubServer } from '../helpers/http-stub.js';

/**
 * The session agent and the login client without containers: the agent in this process, the
 * real Perl client rendered from templates/gateway/vzsb-client.pl.hbs, balancers stood in by
 * local HTTP servers. Logins through sshd, sudo and LXC are in login.test.ts.
 */
const TOKEN = 'lease-token-agent-test-01';

test('frames: split anywhere, several per chunk; unknown types and oversize lengths are refused', (t) => {
  const bytes = Buffer.concat([encodeFrame('H', encodeHello({ v: 1, pid: 42 })), encodeFrame('I', 'ls\n'), encodeFrame('E'), encodeFrame('W', '120 40')]);
  for (const cut of [1, 3, 5, 7, bytes.length - 1]) {
    const d = new FrameDecoder();
    const frames = [...d.push(bytes.subarray(0, cut)), ...d.push(bytes.subarray(cut))];
    t.deepEqual(frames.map((f) => [f.type, f.payload.toString()]), [['H', 'v=1\0pid=42'], ['I', 'ls\n'], ['E', ''], ['W', '120 40']], `cut at ${cut}`);
  }
  t.throws(() => new FrameDecoder().push(Buffer.from('GET / HTTP/1.1\r\n')), { instanceOf: FrameError, message: /unknown frame type 0x47/ });
  t.throws(() => new FrameDecoder().push(Buffer.from([0x49, 0x7f, 0, 0, 0])), { instanceOf: FrameError, message: /exceeds/ });
  t.throws(() => new FrameDecoder().push(encodeFrame('o', 'x')), { message: /unknown frame type 0x6f/ }, 'the agent takes only client frames');
  t.throws(() => encodeFrame('o', Buffer.alloc(1024 * 1024 + 1)), { instanceOf: RangeError });
});

test('hello: the environment sudo kept, the client facts; anything else is dropped or refused', (t) => {
  const hello = parseHello(encodeHello({ v: 1, pid: 4242, tty: '110', cols: 0, rows: 50, SUDO_USER: 'alice', TERM: 'xterm', VZSB_COMMAND: 'a=b; echo', VZSB_HAS_COMMAND: 1, NODE_OPTIONS: '--inspect', PATH: '/tmp' }));
  t.deepEqual(hello, { env: { SUDO_USER: 'alice', TERM: 'xterm', VZSB_COMMAND: 'a=b; echo', VZSB_HAS_COMMAND: '1' }, pid: 4242, tty: { stdin: true, stdout: true, stderr: false }, cols: 80, rows: 50 });
  t.throws(() => parseHello(encodeHello({ v: 2, pid: 4242 })), { message: /protocol version "2"/ });
  t.throws(() => parseHello(encodeHello({ v: 1, pid: 'x' })), { message: /pid: expected a process id/ });
  t.throws(() => parseHello(encodeHello({ v: 1, pid: 9, tty: 'yes' })), { message: /tty: expected three 0\/1 digits/ });
  t.throws(() => parseHello(Buffer.from('v=1\0novalue')), { message: /expected KEY=VALUE/ });
  t.deepEqual(parseWindow(Buffer.from('132 43')), { cols: 132, rows: 43 });
  t.is(parseWindow(Buffer.from('132x43')), undefined);
});

interface Setup {
  dir: string;
  configPath: string;
  logFile: string;
  clientPath: string;
  socketPath: string;
  writeConfig(balancers: string[]): Promise<void>;
  log(): Promise<Record<string, unknown>[]>;
}

/** A gateway's files in a temporary directory: config, sessions directory, the rendered client. */
async function gatewayFiles(t: { teardown(fn: () => Promise<void>): void }, balancers: string[], sessionCommand = ['/bin/echo', 'standalone-session']): Promise<Setup> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-agent-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const sessionsDir = join(dir, 'sessions');
  await mkdir(sessionsDir, { mode: 0o700 });
  const configPath = join(dir, 'gateway.yaml');
  const logFile = join(dir, 'gateway.log');
  const clientPath = join(dir, 'vzsb-client');
  const settings = (b: string[]): GatewaySettings => ({ balancers: b, token: TOKEN, logFile, logLevel: 'debug', sessionsDir, timeouts: { leaseMs: 5000, releaseMs: 500 } });
  const options = { ...defaultSetupOptions(settings(balancers)), configPath, clientPath, sessionCommand };
  const files = await renderGatewayFiles(options);
  await writeFile(clientPath, files.client);
  await chmod(clientPath, 0o755);
  await writeFile(configPath, files.config);
  return {
    dir,
    configPath,
    logFile,
    clientPath,
    socketPath: join(sessionsDir, 'agent.sock'),
    writeConfig: async (b) => writeFile(configPath, (await renderGatewayFiles({ ...options, gateway: settings(b) })).config),
    log: async () =>
      (await readFile(logFile, 'utf8').catch(() => ''))
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}

interface Ran {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  pid: number;
}

/** The client as sudo would start it: only the variables sudo keeps, SUDO_USER set. */
function client(path: string, env: Record<string, string>, options: { onSpawn?: (pid: number) => void } = {}): Promise<Ran> {
  const child = spawn(path, [], { env: { PATH: '/usr/bin:/bin', ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
  options.onSpawn?.(child.pid!);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdin.on('error', () => {});
  child.stdin.end();
  return new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr, pid: child.pid! })));
}

/** A balancer that never answers a lease request and records releases. */
async function holdingBalancer(t: { teardown(fn: () => void): void }): Promise<{ url: string; released: string[]; asked(): number }> {
  const released: string[] = [];
  let asked = 0;
  const url = await stubServer(t, (req, res) => {
    req.resume();
    if (req.method === 'DELETE') {
      released.push(req.url!);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else asked++;
  });
  return { url, released, asked: () => asked };
}

async function agentOn(t: { teardown(fn: () => Promise<void>): void }, s: Setup): Promise<Agent> {
  const agent = await startAgent({ configPath: s.configPath });
  t.teardown(() => agent.stop());
  return agent;
}

test('a login through the agent: the student gets one line with the code, the log has it with the client pid', async (t) => {
  const full = await stubServer(t, reply(503, { error: { code: 'E_POOL_FULL', message: 'no container is free' } }));
  const s = await gatewayFiles(t, [full]);
  const agent = await agentOn(t, s);
  t.is(agent.socketPath, s.socketPath);
  t.is((await stat(s.socketPath)).mode & 0o777, 0o600);
  const ran = await client(s.clientPath, { SUDO_USER: 'alice', VZSB_HAS_COMMAND: '1', VZSB_COMMAND: 'true' });
  t.is(ran.code, 255);
  t.is(ran.stdout, '');
  t.is(ran.stderr, 'vzsb: All sandboxes are in use right now. Try again in a minute. [E_NO_CAPACITY]\n');
  const failed = (await s.log()).find((l) => l.event === 'login.failed');
  t.like(failed, { user: 'alice', code: 'E_NO_CAPACITY', via: 'agent', pid: ran.pid, stage: 'lease' });
  t.is(agent.sessions(), 0);
  // A hello without a usable identity is refused like the standalone process refuses it, and logged.
  const nobody = await client(s.clientPath, { SUDO_USER: 'root' });
  t.is(nobody.code, 255);
  t.regex(nobody.stderr, /\[E_IDENTITY\]/);
  t.like((await s.log()).find((l) => l.event === 'login.failed' && l.code === 'E_IDENTITY'), { via: 'agent', pid: nobody.pid, stage: 'start' });
});

test('the agent reads the config again when it changes: the next login uses the new balancers', async (t) => {
  const asked: string[] = [];
  const first = await stubServer(t, (req, res) => {
    asked.push('first');
    reply(503, { error: { code: 'E_POOL_FULL', message: 'full' } })(req, res);
  });
  const second = await stubServer(t, (req, res) => {
    asked.push('second');
    reply(401, { error: { code: 'E_UNAUTHORIZED', message: 'no' } })(req, res);
  });
  const s = await gatewayFiles(t, [first]);
  await agentOn(t, s);
  t.is((await client(s.clientPath, { SUDO_USER: 'bob' })).code, 255);
  await s.writeConfig([second]);
  const ran = await client(s.clientPath, { SUDO_USER: 'bob' });
  t.regex(ran.stderr, /\[E_GATEWAY_AUTH\]/);
  t.deepEqual(asked, ['first', 'second']);
});

test('a signal to the client while the lease is pending ends the login with 128+n and releases', async (t) => {
  const { url: holding, released } = await holdingBalancer(t);
  const s = await gatewayFiles(t, [holding]);
  await agentOn(t, s);
  let pid = 0;
  const running = client(s.clientPath, { SUDO_USER: 'carol' }, { onSpawn: (p) => (pid = p) });
  // The session's marker names the client's pid once the agent runs its session.
  const marker = join(s.dir, 'sessions', 'carol');
  await until(async () => ((await stat(join(marker, String(pid))).catch(() => undefined)) ? true : undefined));
  process.kill(pid, 'SIGTERM');
  const ran = await running;
  t.is(ran.code, 143);
  t.is(released.length, 1);
  t.regex(released[0]!, /^\/v1\/leases\/carol\?session=[^&]+$/, 'this session ends at the hypervisor');
});

test('no agent listening: the client runs the standalone session in its place; a stale socket is no agent', async (t) => {
  const s = await gatewayFiles(t, [await stubServer(t, reply(401, { error: { code: 'E_UNAUTHORIZED', message: 'no' } }))]);
  const ran = await client(s.clientPath, { SUDO_USER: 'alice' });
  t.is(ran.code, 0, ran.stderr);
  t.is(ran.stdout, 'standalone-session\n');
  // A socket file left by an agent that died refuses connections: the same fallback...
  const bound = await run('perl', ['-MSocket', '-e', 'socket(S, AF_UNIX, SOCK_STREAM, 0) or die $!; bind(S, pack_sockaddr_un($ARGV[0])) or die $!', s.socketPath]);
  t.is(bound.exitCode, 0, bound.stderr);
  t.true((await stat(s.socketPath)).isSocket());
  t.is((await client(s.clientPath, { SUDO_USER: 'alice' })).stdout, 'standalone-session\n');
  // ...and a new agent replaces it.
  const agent = await agentOn(t, s);
  t.is(agent.socketPath, s.socketPath);
  const through = await client(s.clientPath, { SUDO_USER: 'alice' });
  t.regex(through.stderr, /\[E_GATEWAY_AUTH\]/);
  // A second agent on the same socket refuses to start.
  await t.throwsAsync(startAgent({ configPath: s.configPath }), { message: /another session agent listens/ });
});

test('a stopping agent removes its socket at once and waits for open sessions', async (t) => {
  const held: (() => void)[] = [];
  const holding = await stubServer(t, (req, res) => {
    req.resume();
    if (req.method === 'DELETE') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    } else
      held.push(() => {
        res.writeHead(503, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ error: { code: 'E_POOL_FULL', message: 'full' } }));
      });
  });
  const s = await gatewayFiles(t, [holding]);
  const agent = await startAgent({ configPath: s.configPath });
  const running = client(s.clientPath, { SUDO_USER: 'dave' });
  await until(async () => (held.length === 1 ? true : undefined));
  let stopped = false;
  const stopping = agent.stop().then(() => (stopped = true));
  await until(async () => ((await stat(s.socketPath).catch(() => undefined)) ? undefined : true));
  t.false(stopped, 'the open session keeps the agent');
  t.is(agent.sessions(), 1);
  held[0]!();
  t.regex((await running).stderr, /\[E_NO_CAPACITY\]/);
  await stopping;
  t.true(stopped);
});

test('a session still open when the drain time is up is ended as by a hang-up, and the agent stops', async (t) => {
  const balancer = await holdingBalancer(t);
  const s = await gatewayFiles(t, [balancer.url]);
  const agent = await startAgent({ configPath: s.configPath, drainMs: 300 });
  const running = client(s.clientPath, { SUDO_USER: 'erin' });
  await until(async () => (balancer.asked() === 1 ? true : undefined));
  await agent.stop();
  t.is(agent.sessions(), 0);
  const ran = await running;
  t.is(ran.code, 129);
  t.is(balancer.released.length, 1);
  t.regex(balancer.released[0]!, /^\/v1\/leases\/erin\?session=[^&]+$/);
  t.like((await s.log()).find((l) => l.event === 'agent.drain-timeout'), { sessions: 1 });
});

async function until<T>(probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  for (let delay = 10; ; delay = Math.min(200, delay * 2)) {
    const v = await probe();
    if (v !== undefined) return v;
    if (performance.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, delay));
  }
}

test('an agent killed with -9 mid-session: its restart removes the dead sessions\' markers and releases their leases within seconds; a user with a live session keeps it', async (t) => {
  const balancer = await holdingBalancer(t);
  const s = await gatewayFiles(t, [balancer.url]);
  const main = fileURLToPath(new URL('../../src/shell/main.ts', import.meta.url));
  const agentProcess = spawn(process.execPath, ['--import', 'tsx', main, '--agent', '--config', s.configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
  t.teardown(() => {
    agentProcess.kill('SIGKILL');
  });
  await until(async () => ((await stat(s.socketPath).catch(() => undefined))?.isSocket() ? true : undefined), 20_000);
  let pid = 0;
  const running = client(s.clientPath, { SUDO_USER: 'carol' }, { onSpawn: (p) => (pid = p) });
  await until(async () => ((await stat(join(s.dir, 'sessions', 'carol', String(pid))).catch(() => undefined)) ? true : undefined));
  await until(async () => (balancer.asked() > 0 ? true : undefined));
  // dave: one session died with the agent, another one (this process) still runs.
  await mkdir(join(s.dir, 'sessions', 'dave'), { recursive: true });
  await writeFile(join(s.dir, 'sessions', 'dave', String(pid)), '1\n');
  await writeFile(join(s.dir, 'sessions', 'dave', String(process.pid)), '1\n');

  agentProcess.kill('SIGKILL');
  const ran = await running;
  t.is(ran.code, 255);
  t.regex(ran.stderr, /ended unexpectedly\. \[E_INTERNAL\]/);
  t.deepEqual(balancer.released, [], 'nothing released while no agent runs');
  t.truthy(await stat(join(s.dir, 'sessions', 'carol', String(pid))).catch(() => undefined), 'the dead session left its marker');

  const started = performance.now();
  await agentOn(t, s);
  await until(async () => (balancer.released.length > 0 ? true : undefined), 5000);
  t.true(performance.now() - started < 5000);
  t.is(balancer.released.length, 1);
  t.regex(balancer.released[0]!, /^\/v1\/leases\/carol\?session=[^&]+$/, 'the session its marker names');
  t.is(await stat(join(s.dir, 'sessions', 'carol', String(pid))).catch(() => undefined), undefined);
  t.deepEqual(await readdir(join(s.dir, 'sessions', 'dave')), [String(process.pid)]);
  t.like((await s.log()).find((l) => l.event === 'agent.cleanup'), { markersRemoved: 2, released: ['carol'], kept: ['dave'] });
});
