import test from 'ava';
import { mkdir, mkdtemp, readFile, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { run } from '../../src/common/exec.js';
import { eventually, sshExec } from '../../src/daemons/drivers/conformance.js';
import { lxcDriverConfigSchema } from '../../src/daemons/drivers/lxc-config.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';
import { lxcDaemonConfig, removeLxcDaemon, runCli, type CliProcess } from './daemon-process.js';

/**
 * Storage faults of the hypervisor daemon as a real process with real LXC containers: its
 * state directory made read-only for a while (a bind mount remounted ro) during leases,
 * renewals, a release and reclaim passes; then its state file truncated across a restart.
 * Unique to this file: bridge vzsbt70 / 10.231.70.0/24, containers "vzf70-NNNN", its own
 * lxcPath and state directory.
 */
const INDEX = 70;
const PREFIX = `vzf${INDEX}-`;
const LEASE = 'lease-token-faults-lxc-70';
const ADMIN = 'admin-token-faults-lxc-70';
const { Client, utils } = ssh2;

let bridge: TestBridge | undefined;
let work = '';
let stateDir = '';
let driver: LxcDriver | undefined;
let daemon: CliProcess | undefined;
let url = '';
let configPath = '';
let mounted = false;

interface LeaseBody {
  container: string;
  address: string;
  sshPort: number;
  hostKeyFingerprint: string;
  renewed: boolean;
}

async function startDaemon(): Promise<CliProcess> {
  const d = runCli(['hypervisor', '--config', configPath]);
  daemon = d;
  const listening = await d.waitForLog('daemon.listening', 240_000);
  url = `http://127.0.0.1:${listening.port}`;
  return d;
}

async function api(method: string, path: string, token: string | null, body?: unknown): Promise<{ status: number; body: any }> {
  const headers: Record<string, string> = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

const lease = (user: string, publicKey: string) => api('POST', '/v1/leases', LEASE, { user, publicKey });
const capacity = async () => (await api('GET', '/v1/containers', ADMIN)).body.capacity;

async function poolSettled(timeoutMs = 180_000): Promise<void> {
  const cap = await eventually(capacity, (c) => c.building === 0 && c.dirty === 0, timeoutMs);
  if (cap.building !== 0 || cap.dirty !== 0) throw new Error(`pool did not settle: ${JSON.stringify(cap)}`);
}

function connect(l: LeaseBody, privateKey: string): Promise<InstanceType<typeof Client>> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('error', reject);
    client.once('ready', () => resolve(client));
    client.connect({ host: l.address, port: l.sshPort, username: 'root', privateKey, readyTimeout: 15_000, hostVerifier: () => true });
  });
}

async function sshRun(l: LeaseBody, privateKey: string, command: string): Promise<string> {
  const client = await connect(l, privateKey);
  try {
    return await sshExec(client, command);
  } finally {
    client.end();
  }
}

const liveContainers = async () => (await driver!.list()).map((c) => c.id).sort();
const setReadOnly = async (ro: boolean) => {
  const r = await run('mount', ['-o', `remount,bind,${ro ? 'ro' : 'rw'}`, stateDir]);
  if (r.exitCode !== 0) throw new Error(`remount: ${r.stderr}`);
};

test.serial.before(async () => {
  bridge = await createTestBridge(INDEX);
  work = await mkdtemp(join(tmpdir(), `vzsb-faults${INDEX}-`));
  stateDir = join(work, 'state');
  await mkdir(stateDir, { mode: 0o700 });
  // The state directory is a bind mount of itself, so it can be remounted read-only alone.
  const bound = await run('mount', ['--bind', stateDir, stateDir]);
  if (bound.exitCode !== 0) throw new Error(`bind mount: ${bound.stderr}`);
  mounted = true;
  const driverOptions = lxcConfigOn(bridge, { prefix: PREFIX, lxcPath: join(work, 'lxc'), baseName: `vzf${INDEX}base`, limits: { memoryMiB: 256, pidsMax: 256 } });
  driver = new LxcDriver({ config: lxcDriverConfigSchema.parse(driverOptions) });
  configPath = join(work, 'hypervisor.yaml');
  await writeFile(
    configPath,
    lxcDaemonConfig({ lease: LEASE, admin: ADMIN, stateDir, pool: { standby: 2, max: 6, graceSeconds: 0, idleSeconds: 900, checkSeconds: 2 }, extra: { health: { minFreeMiB: 64 } }, driver: driverOptions }),
  );
  await startDaemon();
});

test.serial.after.always(async () => {
  if (daemon && daemon.child.exitCode === null) {
    daemon.child.kill('SIGKILL');
    await daemon.exited;
  }
  if (mounted) {
    await run('mount', ['-o', 'remount,bind,rw', stateDir]);
    await run('umount', [stateDir]);
  }
  await removeLxcDaemon({ daemon, driver, work, baseName: `vzf${INDEX}base`, bridge });
});

let alice: LeaseBody;
let aliceKey = '';

test.serial('a read-only state directory for a while: renewals and a release go on, new leases are refused, health is degraded, nothing is destroyed, and it recovers by itself', async (t) => {
  await poolSettled();
  const k1 = utils.generateKeyPairSync('ed25519');
  alice = (await lease('alice', k1.public)).body as LeaseBody;
  t.is(await sshRun(alice, k1.private, 'echo homework > /root/work.txt && hostname'), `${alice.container}\n`);
  // alice keeps a session open through the fault.
  const session = await connect(alice, k1.private);
  const carolKey = utils.generateKeyPairSync('ed25519');
  const carol = (await lease('carol', carolKey.public)).body as LeaseBody;
  await poolSettled();
  const before = await liveContainers();
  t.deepEqual((await api('GET', '/healthz', null)).body.degraded, []);

  await setReadOnly(true);
  try {
    // A renewal with a new key (a second terminal): granted, same container, the key works.
    const k2 = utils.generateKeyPairSync('ed25519');
    const renewed = await lease('alice', k2.public);
    t.is(renewed.status, 200, JSON.stringify(renewed.body));
    t.like(renewed.body, { container: alice.container, renewed: true });
    t.is(await sshRun(alice, k2.private, 'cat /root/work.txt'), 'homework\n');
    aliceKey = k2.private;
    // carol logs out: answered, kept in memory.
    t.is((await api('DELETE', '/v1/leases/carol', LEASE)).status, 200);
    // A new student: refused with a clear code (the balancer goes elsewhere).
    const bob = await lease('bob', utils.generateKeyPairSync('ed25519').public);
    t.is(bob.status, 503);
    t.is(bob.body.error.code, 'E_STATE_UNWRITABLE');
    const health = await eventually(() => api('GET', '/healthz', null), (h) => h.body.status === 'degraded', 15_000);
    t.is(health.status, 200);
    t.regex(health.body.degraded.join('; '), /state not writable: .*(EROFS|read-only)/i);
    // Several reclaim passes (every 2 s) while the disk refuses: nothing is reset or destroyed.
    await daemon!.waitForLog('state.unwritable');
    await new Promise((r) => setTimeout(r, 6000));
    t.deepEqual(await liveContainers(), before, 'no container destroyed or rebuilt while the state cannot be written');
    t.true(before.includes(carol.container));
    t.is(await sshExec(session, 'cat /root/work.txt'), 'homework\n', "alice's open session lives on");
  } finally {
    await setReadOnly(false);
  }

  // Recovery by itself: healthy again, the release written and carol's container reset.
  await eventually(() => api('GET', '/healthz', null), (h) => h.body.status === 'ok', 30_000);
  t.is((await api('GET', '/healthz', null)).body.status, 'ok');
  await daemon!.waitForLog('state.writable');
  await poolSettled();
  const state = JSON.parse(await readFile(join(stateDir, 'state.json'), 'utf8')) as { containers: { id: string; state: string; user?: string }[] };
  t.like(state.containers.find((c) => c.id === alice.container), { state: 'leased', user: 'alice' });
  t.false(state.containers.some((c) => c.user === 'carol'));
  const bob = await lease('bob', utils.generateKeyPairSync('ed25519').public);
  t.is(bob.status, 200, JSON.stringify(bob.body));
  t.is(await sshExec(session, 'echo still-here'), 'still-here\n');
  session.end();
  t.false(daemon!.logs.some((l) => l.event === 'container.broken' || l.event === 'lease.failed'), 'no container broken, no lease failed');
});

test.serial('a truncated state file: the daemon starts, keeps the leased container for its user, logs what it did', async (t) => {
  const d = daemon!;
  d.child.kill('SIGTERM');
  t.is(await d.exited, 0);
  const leasedBefore = (await liveContainers()).filter((id) => id === alice.container);
  t.deepEqual(leasedBefore, [alice.container]);
  await truncate(join(stateDir, 'state.json'), 40);
  const second = await startDaemon();
  t.truthy(second.logs.find((l) => l.event === 'state.damaged'));
  t.truthy(second.logs.find((l) => l.event === 'state.rebuilt'));
  const leases = (await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[];
  t.like(leases.find((l) => l.user === 'alice'), { container: alice.container });
  t.truthy(leases.find((l) => l.user === 'bob'));
  // The student's work is still there: the container was kept, not rebuilt.
  t.is(await sshRun(alice, aliceKey, 'cat /root/work.txt'), 'homework\n');
  const k3 = utils.generateKeyPairSync('ed25519');
  const again = (await lease('alice', k3.public)).body as LeaseBody;
  t.is(again.container, alice.container);
  t.true(again.renewed);
  await poolSettled();
  t.true((await liveContainers()).includes(alice.container));
  t.truthy(await readFile(join(stateDir, 'state.damaged.json'), 'utf8'));
});
