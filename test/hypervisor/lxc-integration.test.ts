import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
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
 * The hypervisor daemon as a real process with the LXC driver: real containers on a private
 * bridge, real ssh logins, a SIGKILL in the middle of a burst. Unique to this file: bridge
 * vzsbt31 / 10.231.31.0/24, containers "vzh31-NNNN", its own lxcPath and state directory.
 */
const INDEX = 31;
const PREFIX = `vzh${INDEX}-`;
const LEASE = 'lease-token-lxc-integration-31';
const ADMIN = 'admin-token-lxc-integration-31';
const { Client, utils } = ssh2;

let bridge: TestBridge | undefined;
let work: string | undefined;
let driver: LxcDriver | undefined;
let daemon: CliProcess | undefined;
let url = '';
let configPath = '';

interface LeaseBody {
  container: string;
  address: string;
  sshPort: number;
  hostKey: string;
  hostKeyFingerprint: string;
  user: string;
}

async function startDaemon(): Promise<void> {
  daemon = runCli(['hypervisor', '--config', configPath]);
  // The first start builds the LXC base from the cached root filesystem.
  const listening = await daemon.waitForLog('daemon.listening', 240_000);
  url = `http://127.0.0.1:${listening.port}`;
}

async function api(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: any }> {
  const res = await fetch(url + path, {
    method,
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}

const lease = (user: string, publicKey: string) => api('POST', '/v1/leases', LEASE, { user, publicKey });

/** Wait until no container is being built or reset. */
async function poolSettled(timeoutMs = 120_000): Promise<any> {
  const cap = await eventually(
    async () => (await api('GET', '/v1/containers', ADMIN)).body.capacity,
    (c) => c.building === 0 && c.dirty === 0,
    timeoutMs,
  );
  if (cap.building !== 0 || cap.dirty !== 0) throw new Error(`pool did not settle: ${JSON.stringify(cap)}`);
  return cap;
}

function fingerprintOf(key: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(key).digest('base64').replace(/=+$/, '');
}

/** Log in as root with the lease's key, accepting only the host key the lease reported. */
function connect(l: LeaseBody, privateKey: string): Promise<InstanceType<typeof Client>> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('error', reject);
    client.once('ready', () => resolve(client));
    client.connect({
      host: l.address,
      port: l.sshPort,
      username: 'root',
      privateKey,
      readyTimeout: 15_000,
      hostVerifier: (key: Buffer) => {
        const seen = fingerprintOf(key);
        if (seen !== l.hostKeyFingerprint) reject(new Error(`host key ${seen} is not the reported ${l.hostKeyFingerprint}`));
        return seen === l.hostKeyFingerprint;
      },
    });
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

/** An interactive shell session left open (what the idle rule must see). */
async function openSession(l: LeaseBody, privateKey: string): Promise<InstanceType<typeof Client>> {
  const client = await connect(l, privateKey);
  return new Promise((resolve, reject) => client.shell((err) => (err ? reject(err) : resolve(client))));
}

async function inContainer(id: string, ...argv: string[]): Promise<number> {
  return (await run('lxc-attach', ['-P', join(work!, 'lxc'), '-n', id, '--', ...argv])).exitCode;
}

test.serial.before(async () => {
  bridge = await createTestBridge(INDEX);
  work = await mkdtemp(join(tmpdir(), `vzsb-hyp${INDEX}-`));
  const driverOptions = lxcConfigOn(bridge, { prefix: PREFIX, lxcPath: join(work, 'lxc'), baseName: `vzh${INDEX}base`, limits: { memoryMiB: 256, pidsMax: 256 } });
  driver = new LxcDriver({ config: lxcDriverConfigSchema.parse(driverOptions) });
  configPath = join(work, 'hypervisor.yaml');
  await writeFile(
    configPath,
    lxcDaemonConfig({ lease: LEASE, admin: ADMIN, stateDir: join(work, 'state'), pool: { standby: 4, max: 34, graceSeconds: 0, idleSeconds: 900, checkSeconds: 5 }, driver: driverOptions }),
  );
  await startDaemon();
});

test.serial.after.always(() => removeLxcDaemon({ daemon, driver, work, baseName: `vzh${INDEX}base`, bridge }));

test.serial('lease -> ssh with the one-time key, verifying the reported host key; release -> reset -> back in the pool', async (t) => {
  await poolSettled();
  const keys = utils.generateKeyPairSync('ed25519', { comment: 'one-time' });
  const res = await lease('alice', keys.public);
  t.is(res.status, 200, JSON.stringify(res.body));
  const l = res.body as LeaseBody;
  t.regex(l.container, new RegExp(`^${PREFIX}\\d{4}$`));
  t.is(l.address, bridge!.address(10 + Number(l.container.slice(PREFIX.length))));
  t.is(l.hostKeyFingerprint, fingerprintOf(Buffer.from(l.hostKey.split(' ')[1]!, 'base64')));
  t.is(await sshRun(l, keys.private, 'echo homework > /root/student.txt && hostname'), `${l.container}\n`);
  t.is(await inContainer(l.container, 'test', '-e', '/root/student.txt'), 0);

  // A stranger's key is not authorized; the same user's new key replaces the old one.
  const other = utils.generateKeyPairSync('ed25519');
  await t.throwsAsync(sshRun(l, other.private, 'true'));
  const again = (await lease('alice', other.public)).body as LeaseBody;
  t.is(again.container, l.container);
  t.is(await sshRun(again, other.private, 'cat /root/student.txt'), 'homework\n');
  await t.throwsAsync(sshRun(l, keys.private, 'true'), undefined, 'the first key no longer works');

  const released = await api('DELETE', '/v1/leases/alice', LEASE);
  t.is(released.status, 200);
  await poolSettled();
  const containers = (await api('GET', '/v1/containers', ADMIN)).body.containers as { id: string; state: string; user: string | null }[];
  t.is(containers.find((c) => c.id === l.container)?.state, 'clean');
  t.is(await inContainer(l.container, 'test', '-e', '/root/student.txt'), 1, "the student's file is gone");
  t.not((await driver!.hostKey(l.container)).fingerprint, l.hostKeyFingerprint, 'a fresh host key per clone');
});

test.serial('30 concurrent leases for 30 users: 30 distinct containers, each reachable with its own key', async (t) => {
  const keys = utils.generateKeyPairSync('ed25519');
  const users = Array.from({ length: 30 }, (_, i) => `class${i + 1}`);
  const results = await Promise.all(users.map((u) => lease(u, keys.public)));
  t.deepEqual(results.map((r) => r.status), users.map(() => 200), JSON.stringify(results.find((r) => r.status !== 200)?.body));
  const leases = results.map((r) => r.body as LeaseBody);
  t.is(new Set(leases.map((l) => l.container)).size, 30);
  t.is(new Set(leases.map((l) => l.address)).size, 30);
  t.is(new Set(leases.map((l) => l.hostKeyFingerprint)).size, 30);
  const names = await Promise.all(leases.slice(0, 5).map((l) => sshRun(l, keys.private, 'hostname')));
  t.deepEqual(names, leases.slice(0, 5).map((l) => `${l.container}\n`));
  const listed = (await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[];
  t.deepEqual(listed.map((x) => x.user).sort(), [...users].sort());
});

test.serial('SIGKILL in the middle of a burst: after a restart no lease is lost, none is held twice, no orphan remains', async (t) => {
  const keys = utils.generateKeyPairSync('ed25519');
  const newUsers = Array.from({ length: 16 }, (_, i) => `burst${i + 1}`);
  const releasing = Array.from({ length: 30 }, (_, i) => `class${i + 1}`);
  const granted = new Map<string, string>();
  const released = new Set<string>();
  let answered = 0;
  const dead = daemon!.exited;
  let kill!: () => void;
  const killed = new Promise<void>((resolve) => (kill = resolve));
  let fired = false;
  // Die once a few leases were answered (or most releases), with resets and leases in flight.
  const count = () => {
    answered++;
    if (!fired && (granted.size >= 3 || answered >= 40)) {
      fired = true;
      daemon!.child.kill('SIGKILL');
      kill();
    }
  };
  const burst = [
    ...releasing.map((u) =>
      api('DELETE', `/v1/leases/${u}`, LEASE).then((r) => {
        if (r.status === 200) released.add(u);
        count();
      }),
    ),
    ...newUsers.map((u) =>
      lease(u, keys.public).then((r) => {
        if (r.status === 200) granted.set(u, (r.body as LeaseBody).container);
        count();
      }),
    ),
  ];
  await Promise.allSettled(burst);
  kill(); // the burst ended before the kill: kill now
  if (daemon!.child.exitCode === null && daemon!.child.signalCode === null) daemon!.child.kill('SIGKILL');
  await killed;
  await dead;
  t.true(answered < burst.length, `the daemon died with requests in flight (${answered} of ${burst.length} answered)`);

  await startDaemon();
  const reconciled = daemon!.logs.find((l) => l.event === 'pool.reconciled');
  t.truthy(reconciled);
  t.log(`killed after ${answered} of ${burst.length} answers (${granted.size} leases granted, ${released.size} releases)`);
  t.log(`reconciled: ${JSON.stringify(reconciled, ['leasesKept', 'orphansDestroyed', 'recordsDropped', 'rebuilt', 'leasesLost'])}`);
  const afterRestart = (await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[];
  const holder = new Map<string, string>();
  for (const l of afterRestart) {
    t.false(holder.has(l.container), `${l.container} is leased to ${holder.get(l.container)} and ${l.user}`);
    holder.set(l.container, l.user);
  }
  for (const [user, container] of granted) {
    t.is(afterRestart.find((l) => l.user === user)?.container, container, `${user}'s lease survived the crash`);
  }
  for (const user of released) t.false(afterRestart.some((l) => l.user === user), `${user} was released`);

  await poolSettled();
  const records = ((await api('GET', '/v1/containers', ADMIN)).body.containers as { id: string }[]).map((c) => c.id).sort();
  const live = (await driver!.list()).map((c) => c.id).sort();
  t.deepEqual(live, records, 'every container has a record and every record a container: no orphan');
  t.true(live.length <= 34);

  // Everyone of the burst asks again: those granted get the same container, all are distinct.
  const again = await Promise.all(newUsers.map((u) => lease(u, keys.public)));
  t.deepEqual(again.map((r) => r.status), newUsers.map(() => 200));
  const containers = again.map((r) => (r.body as LeaseBody).container);
  for (const [i, user] of newUsers.entries()) {
    if (granted.has(user)) t.is(containers[i], granted.get(user)!);
  }
  const everyone = (await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[];
  t.is(new Set(everyone.map((l) => l.container)).size, everyone.length);
  const sample = again[again.length - 1]!.body as LeaseBody;
  t.is(await sshRun(sample, keys.private, 'hostname'), `${sample.container}\n`);
});

test.serial('graceful restart keeps every lease; a lease is kept while its ssh session lives and reclaimed once idle', async (t) => {
  const before = ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[]).map((l) => `${l.user}=${l.container}`);
  const config = JSON.parse(await readFile(configPath, 'utf8'));
  config.pool = { ...config.pool, idleSeconds: 3, loginSeconds: 600, checkSeconds: 1 };
  await writeFile(configPath, JSON.stringify(config));
  daemon!.child.kill('SIGTERM');
  t.is(await daemon!.exited, 0);
  await startDaemon();
  const after = ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; container: string }[]).map((l) => `${l.user}=${l.container}`);
  t.deepEqual(after, before);

  const keys = utils.generateKeyPairSync('ed25519');
  const l = (await lease('idler', keys.public)).body as LeaseBody;
  const client = await openSession(l, keys.private);
  try {
    const seen = await eventually(
      async () => ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string; loggedIn: boolean }[]).find((x) => x.user === 'idler'),
      (x) => x?.loggedIn === true,
      30_000,
    );
    t.true(seen?.loggedIn, 'the reclaim job saw the ssh session');
    // Twice the idle time with the session open: the lease stays.
    const until = Date.now() + 6_000;
    const stillThere = await eventually(
      async () => ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string }[]).some((x) => x.user === 'idler'),
      (held) => !held || Date.now() > until,
      30_000,
    );
    t.true(stillThere, 'kept while the session lives');
  } finally {
    client.end();
  }
  const gone = await eventually(
    async () => ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string }[]).some((x) => x.user === 'idler'),
    (held) => !held,
    60_000,
  );
  t.false(gone, 'reclaimed once idle');
  const event = daemon!.logs.find((x) => x.event === 'lease.reclaimed' && x.user === 'idler');
  t.like(event, { container: l.container, reason: 'idle' });
});


test.serial('with the daemon down, reclaim --once takes the lock and works on the real containers directly', async (t) => {
  const leases = ((await api('GET', '/v1/leases', ADMIN)).body.leases as { user: string }[]).length;
  daemon!.child.kill('SIGTERM');
  t.is(await daemon!.exited, 0);
  const pass = runCli(['hypervisor', 'reclaim', '--once', '--config', configPath]);
  t.is(await pass.exited, 0, JSON.stringify(pass.logs.slice(-3)));
  const report = JSON.parse(pass.stdout.join('')) as { via: string; kept: number; reclaimed: unknown[] };
  t.is(report.via, 'direct');
  t.is(report.kept + report.reclaimed.length, leases);
  const state = JSON.parse(await readFile(join(work!, 'state', 'state.json'), 'utf8')) as { containers: { id: string; state: string }[] };
  const live = (await driver!.list()).map((c) => c.id).sort();
  t.deepEqual(state.containers.map((c) => c.id).sort(), live, 'the pass left no orphan and no phantom record');
  t.false(state.containers.some((c) => c.state === 'building' || c.state === 'dirty'), 'it waited for its resets');
});
