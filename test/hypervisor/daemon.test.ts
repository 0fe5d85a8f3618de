import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquirePidLock } from '../../src/daemons/common/pid-lock.js';
import { eventually } from '../../src/daemons/drivers/conformance.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { loadHypervisorConfig } from '../../src/daemons/hypervisor/config.js';
import { checkDriverConfig } from '../../src/daemons/hypervisor/drivers.js';
import { runCli } from './daemon-process.js';

const ADMIN = 'admin-token-daemon-test-0001';
const LEASE = 'lease-token-daemon-test-0001';

async function configFile(t: { teardown(fn: () => Promise<void>): void }, extra = ''): Promise<{ path: string; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-daemon-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'hypervisor.yaml');
  await writeFile(
    path,
    `listen: {host: 127.0.0.1, port: 0}
tokens:
  lease: [${LEASE}]
  admin: [${ADMIN}]
stateDir: ${join(dir, 'state')}
pool: {standby: 2, max: 4, checkSeconds: 1}
driver: {kind: memory, prefix: vzd-}
${extra}`,
  );
  return { path, dir };
}

test('config errors name the bad field and the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'h.yaml');
  const cases: [string, RegExp][] = [
    ['tokens: {admin: [short]}\npool: {standby: 1, max: 2}\ndriver: {kind: memory}', /tokens\.admin\[0\]: a token of at least 16 characters/],
    ['tokens: {}\npool: {standby: 3, max: 2}\ndriver: {kind: memory}', /pool\.standby: standby must not exceed max/],
    ['tokens: {}\npool: {standby: 1, max: "ten"}\ndriver: {kind: memory}', /pool\.max: expected number, got "ten"/],
    ['tokens: {}\npool: {standby: 1, max: 2}\ndriver: {kind: docker}', /driver\.kind: /],
    ['tokens: {}\npool: {standby: 1, max: 2, idle: 5}\ndriver: {kind: memory}', /pool: unknown field idle/],
    ['tokens: {}\nlisten: {port: 70000}\npool: {standby: 1, max: 2}\ndriver: {kind: memory}', /listen\.port: /],
    ['tokens: {}\npool: {standby: 1, max: 2}\ndriver: {kind: memory}\nstateDir: relative/dir', /stateDir: /],
    ['pool: [', /not valid YAML/],
  ];
  for (const [text, message] of cases) {
    await writeFile(path, text);
    const err = await t.throwsAsync(loadHypervisorConfig(path));
    t.regex(err!.message, message, text);
    t.true(err!.message.startsWith(path), 'names the file');
  }
  // Driver options are checked by the driver's own schema, under "driver.".
  t.throws(() => checkDriverConfig({ kind: 'openvz', firstAddress: '10.1.0.1' }, 'h.yaml'), { message: /^h\.yaml: driver\.template: required string; driver\.lastAddress: required string$/ });
  t.throws(() => checkDriverConfig({ kind: 'memory', latency: 1 }, 'h.yaml'), { message: /driver: unknown field latency/ });
  await writeFile(path, 'tokens: {}\npool: {standby: 1, max: 2}\ndriver: {kind: lxc, bridge: br0}');
  const cli = runCli(['hypervisor', '--check', '--config', path]);
  t.is(await cli.exited, 1);
  t.regex(cli.logs.map((l) => l.text).join('\n'), /driver\.subnet: required string/);
});

test('the daemon process: serves, holds the state lock, reclaim --once asks it, SIGTERM stops it cleanly', async (t) => {
  const { path, dir } = await configFile(t);
  const daemon = runCli(['hypervisor', '--config', path]);
  t.teardown(() => {
    daemon.child.kill('SIGKILL');
  });
  const listening = await daemon.waitForLog('daemon.listening');
  const url = `http://127.0.0.1:${listening.port}`;
  const lockText = await readFile(join(dir, 'state', 'hypervisor.lock'), 'utf8');
  t.is(Number(lockText.split(' ')[0]), daemon.child.pid!);

  const health = await eventually(
    async () => (await (await fetch(`${url}/healthz`)).json()) as { capacity: { clean: number } },
    (h) => h.capacity.clean === 2,
    30_000,
  );
  t.is(health.capacity.clean, 2, 'the pool fills to standby');
  const res = await fetch(`${url}/v1/leases`, {
    method: 'POST',
    headers: { authorization: `Bearer ${LEASE}`, 'content-type': 'application/json' },
    body: JSON.stringify({ user: 'alice', publicKey: generateEd25519().publicKey }),
  });
  t.is(res.status, 200);
  t.is(((await res.json()) as { container: string }).container, 'vzd-0001');

  // A second daemon on the same state directory refuses to start.
  const second = runCli(['hypervisor', '--config', path]);
  t.is(await second.exited, 3);
  t.regex(second.logs.map((l) => l.text ?? '').join('\n'), new RegExp(`holds .*hypervisor\\.lock.*|pid ${daemon.child.pid}`));

  // The cron backstop asks the running daemon instead of touching the pool itself.
  const reclaim = runCli(['hypervisor', 'reclaim', '--once', '--config', path]);
  t.is(await reclaim.exited, 0);
  const out = JSON.parse(reclaim.stdout.join('')) as { via: string; kept: number };
  t.is(out.via, 'daemon');
  t.is(out.kept, 1);

  const granted = daemon.logs.find((l) => l.event === 'lease.granted');
  t.like(granted, { user: 'alice', container: 'vzd-0001', daemon: 'hypervisor' });
  t.false(daemon.logs.some((l) => JSON.stringify(l).includes(LEASE) || JSON.stringify(l).includes(ADMIN)), 'no token in the log');

  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
  t.truthy(daemon.logs.find((l) => l.event === 'daemon.stopped'));
  await t.throwsAsync(readFile(join(dir, 'state', 'hypervisor.lock'), 'utf8'), { code: 'ENOENT' });
  const state = JSON.parse(await readFile(join(dir, 'state', 'state.json'), 'utf8')) as { containers: { user?: string }[] };
  t.true(state.containers.some((c) => c.user === 'alice'), 'the lease is on disk');

  // Daemon down: the backstop takes the lock and works directly.
  const direct = runCli(['hypervisor', 'reclaim', '--once', '--config', path]);
  t.is(await direct.exited, 0);
  t.is((JSON.parse(direct.stdout.join('')) as { via: string }).via, 'direct');
});

test('a starting daemon waits while a reclaim pass holds the state lock', async (t) => {
  const { path, dir } = await configFile(t);
  const pass = await acquirePidLock(join(dir, 'state', 'hypervisor.lock'), { role: 'reclaim' });
  const daemon = runCli(['hypervisor', '--config', path]);
  t.teardown(() => {
    daemon.child.kill('SIGKILL');
  });
  const waiting = await daemon.waitForLog('daemon.waiting_for_lock');
  t.is(waiting.holder, process.pid);
  t.false(daemon.logs.some((l) => l.event === 'daemon.listening'));
  await pass.release();
  await daemon.waitForLog('daemon.listening');
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('reclaim without --once is a usage error', async (t) => {
  const { path } = await configFile(t);
  const cli = runCli(['hypervisor', 'reclaim', '--config', path]);
  t.is(await cli.exited, 1);
  t.regex(cli.logs.map((l) => l.text).join('\n'), /add --once/);
});

test('pid lock: held by a live process, taken over from a dead one', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-lock-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'x.lock');
  const lock = await acquirePidLock(path);
  await t.throwsAsync(acquirePidLock(path), { code: 'E_LOCKED', message: new RegExp(`held by process ${process.pid}`) });
  await lock.release();
  // A dead holder (a pid that exited) and a recycled pid (same pid, other start time) are stale.
  const gone = runCli(['--help']);
  await gone.exited;
  await writeFile(path, `${gone.child.pid} 12345\n`);
  const taken = await acquirePidLock(path);
  await writeFile(path, `${process.pid} 1\n`);
  const recycled = await acquirePidLock(path).catch((e: Error) => e);
  t.false(recycled instanceof Error, 'a pid with another start time is not the holder');
  if (!(recycled instanceof Error)) await recycled.release();
  await taken.release();
});
