import test from 'ava';
import { readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { parseInput } from '../../src/common/validate.js';
import { runDriverConformance } from '../../src/daemons/drivers/conformance.js';
import { OpenVzDriver, openVzDriverConfigSchema, openVzLimitArgs, prlctlErrorCode, quotaArgs, shellQuote, vzctlErrorCode } from '../../src/daemons/drivers/openvz.js';
import { createFakeOpenVz, type FakeOpenVz } from '../fixtures/openvz/fake.js';

// Runs against the FAKE vzctl/vzlist of test/fixtures/openvz: no OpenVZ kernel here.
// Unique to this file: addresses 127.231.21.0/24, ids "vzo21-N".
const INDEX = 21;
const PREFIX = `vzo${INDEX}-`;
let fake: FakeOpenVz;
let driver: OpenVzDriver;

test.serial.before(async () => {
  fake = await createFakeOpenVz(INDEX, 'vzctl', PREFIX);
  driver = new OpenVzDriver({ config: fake.config, runner: fake.runner, connections: fake.connections, scratchDir: fake.stateDir });
});

runDriverConformance(test, 'openvz vzctl (fake vzctl, no kernel)', () => driver, {
  ids: Array.from({ length: 10 }, (_, i) => `${PREFIX}${i + 1}`),
  skip: {
    sshLogin: 'fake OpenVZ: a stand-in greets at the address, there is no sshd to log in to',
    quota: 'fake OpenVZ: no kernel enforces --diskspace/--diskinodes here (the arguments are checked in this file)',
    isolation: 'fake OpenVZ: no kernel here, the fake vzctl runs no processes and maps no ids',
  },
});

// After the suite's own teardown (hooks run in the order they were registered).
test.serial.after.always(async () => {
  await fake?.cleanup();
});

const own = (n: number) => `${PREFIX}${100 + n}`;

test.serial('openvz: create passes the documented vzctl arguments and writes the host key into the never-started root', async (t) => {
  const id = own(1);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  const ctid = driver.ctid(id);
  const conf = JSON.parse(await readFile(join(fake.stateDir, 'conf', `${ctid}.json`), 'utf8'));
  t.is(conf.name, id);
  t.is(conf.hostname, id);
  t.deepEqual(conf.ip, ['127.231.21.111']);
  t.deepEqual(conf.resources, { ram: '256M', swap: '64M', cpuunits: '1000', cpulimit: '150', cpumask: '0-1', numproc: '256', diskspace: '4096M:4096M', diskinodes: '200000:200000' });
  t.is(conf.status, 'stopped', 'unmounted again after the keys were written');
  const sshDir = join(fake.stateDir, 'private', String(ctid), 'etc', 'ssh');
  t.deepEqual((await readdir(sshDir)).sort(), ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub'], 'template keys are gone');
  const pub = (await readFile(join(sshDir, 'ssh_host_ed25519_key.pub'), 'utf8')).trim();
  t.is((await driver.hostKey(id)).publicKey, pub);
});

test.serial('openvz: exit codes map to typed errors (9 locked, 44 exists, 91 no template, 14 missing)', async (t) => {
  const id = own(2);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await t.throwsAsync(driver.create(id), { code: 'E_DRIVER_EXISTS', message: /exit 44/ } as never);
  const lock = join(fake.stateDir, 'locks', String(driver.ctid(id)));
  await writeFile(lock, '');
  await t.throwsAsync(driver.start(id), { code: 'E_DRIVER_LOCKED', message: /exit 9/ } as never);
  await unlink(lock);
  const noTemplate = new OpenVzDriver({ config: { ...fake.config, template: 'no-such-template' }, runner: fake.runner, connections: fake.connections });
  await t.throwsAsync(noTemplate.create(own(3)), { code: 'E_DRIVER_NO_BASE', message: /exit 91/ } as never);
  t.is(vzctlErrorCode(14), 'E_DRIVER_NOT_FOUND');
  t.is(vzctlErrorCode(43), 'E_DRIVER_NOT_FOUND');
  t.is(vzctlErrorCode(32), 'E_DRIVER_RUNTIME');
});

test.serial('openvz: stop of a stopped container exits 0 in vzctl and is fine here', async (t) => {
  const id = own(4);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  const direct = await fake.runner('vzctl', ['stop', String(driver.ctid(id))]);
  t.is(direct.exitCode, 0);
  await driver.stop(id);
  await driver.start(id);
  const again = await fake.runner('vzctl', ['start', String(driver.ctid(id))]);
  t.is(again.exitCode, 32);
  await driver.start(id); // 32 "already running" is not an error for start
  await driver.stop(id);
});

test.serial('openvz: exec quotes arguments: vzctl exec2 joins them into one shell line', async (t) => {
  const id = own(5);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  const tricky = ["it's", 'two words', '$HOME', '; echo injected', '*'];
  const r = await driver.exec(id, ['printf', '%s\\n', ...tricky]);
  t.is(r.stdout, tricky.join('\n') + '\n');
  t.is(shellQuote('plain/path-1.2'), 'plain/path-1.2');
  t.is(shellQuote("a'b"), `'a'\\''b'`);
});

test.serial('openvz: sessions are established connections from a gateway in the host\'s conntrack table, nothing from inside', async (t) => {
  const id = own(6);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  const ip = (await driver.list()).find((c) => c.id === id)!.address!;
  const gw = fake.config.sessionSources![0]!;
  const other = ip.replace(/\.\d+$/, '.99');
  await fake.setConntrack([
    `ipv4     2 tcp      6 431990 ESTABLISHED src=${gw} dst=${ip} sport=40001 dport=22 src=${ip} dst=${gw} sport=22 dport=40001 [ASSURED] mark=0 zone=0 use=2`,
    `ipv4     2 tcp      6 431999 ESTABLISHED src=${gw} dst=${ip} sport=40002 dport=22 src=${ip} dst=${gw} sport=22 dport=40002 [ASSURED] mark=0 zone=0 use=2`,
    `ipv4     2 tcp      6 431000 ESTABLISHED src=${gw} dst=${ip} sport=40003 dport=22 src=${ip} dst=${gw} sport=22 dport=40003 [ASSURED] mark=0 zone=0 use=2`, // silent for 1000 s: dead
    `ipv4     2 tcp      6 110 TIME_WAIT src=${gw} dst=${ip} sport=40004 dport=22 src=${ip} dst=${gw} sport=22 dport=40004 [ASSURED] mark=0 zone=0 use=2`,
    `ipv4     2 tcp      6 431999 ESTABLISHED src=10.9.9.9 dst=${ip} sport=40005 dport=22 src=${ip} dst=10.9.9.9 sport=22 dport=40005 [ASSURED] mark=0 zone=0 use=2`, // not a gateway
    `ipv4     2 tcp      6 431999 ESTABLISHED src=${ip} dst=${gw} sport=22 dport=40006 src=${gw} dst=${ip} sport=40006 dport=22 mark=0 zone=0 use=2`, // the container's own direction
    `ipv4     2 tcp      6 431999 ESTABLISHED src=${gw} dst=${other} sport=40007 dport=22 src=${other} dst=${gw} sport=22 dport=40007 [ASSURED] mark=0 zone=0 use=2`, // another container
    `ipv4     2 tcp      6 431999 ESTABLISHED src=${gw} dst=${ip} sport=40008 dport=2222 src=${ip} dst=${gw} sport=2222 dport=40008 [ASSURED] mark=0 zone=0 use=2`, // not sshd
  ]);
  t.is(await driver.sessionCount(id), 2);
  await driver.stop(id);
  t.is(await driver.sessionCount(id), 0, 'a stopped container has no sessions');
});

test.serial('openvz: a recorded vzlist -a -j document is read (null names, ip lists, other owners skipped)', async (t) => {
  const recorded = await readFile(new URL('../fixtures/openvz/vzlist-a-j.json', import.meta.url), 'utf8');
  const replay = new OpenVzDriver({
    config: { ...fake.config, prefix: 'vzsb-', ctidBase: 1000 },
    runner: async (file, args) => ({ command: [file, ...args].join(' '), exitCode: 0, signal: null, stdout: recorded, stderr: '', durationMs: 1, timedOut: false, failed: false }),
  });
  t.deepEqual(await replay.list(), [
    { id: 'vzsb-0001', running: true, address: '10.8.0.11' },
    { id: 'vzsb-0002', running: false, address: '10.8.0.12' },
  ]);
  const key = (await replay.hostKey('vzsb-0001')).fingerprint;
  t.regex(key, /^SHA256:[A-Za-z0-9+/]{43}$/);
});

test('openvz: prlctl failures map by message', (t) => {
  t.is(prlctlErrorCode('Failed to create the Container: The Container with the name x already exists.'), 'E_DRIVER_EXISTS');
  t.is(prlctlErrorCode('Failed to get VM config: The virtual machine could not be found.'), 'E_DRIVER_NOT_FOUND');
  t.is(prlctlErrorCode('Failed to start the CT: disk full'), 'E_DRIVER_RUNTIME');
  t.is(prlctlErrorCode('Failed to create the Container: OS template foo not found.'), 'E_DRIVER_NO_BASE');
  t.is(prlctlErrorCode('The VM is locked by another operation'), 'E_DRIVER_LOCKED');
});

test('openvz: config validation names the bad field', (t) => {
  const ok = parseInput(openVzDriverConfigSchema, { template: 'debian-12.0-x86_64', firstAddress: '10.8.0.10', lastAddress: '10.8.0.99' }, 'hypervisor.yaml');
  t.is(ok.backend, 'vzctl');
  t.is(ok.rootDir, '/vz/root');
  t.throws(() => parseInput(openVzDriverConfigSchema, { ...ok, backend: 'lxc' }, 'hypervisor.yaml'), { message: /hypervisor\.yaml: backend:/ });
  t.throws(() => parseInput(openVzDriverConfigSchema, { ...ok, lastAddress: '10.8.0.1' }, 'hypervisor.yaml'), { message: /lastAddress: expected an address not below/ });
});

test('openvz: the disk quota maps onto --diskspace and --diskinodes (soft = hard); prlctl refuses it', (t) => {
  t.deepEqual(quotaArgs({ diskMiB: 4096, inodes: 200_000 }), ['--diskspace', '4096M:4096M', '--diskinodes', '200000:200000']);
  t.deepEqual(quotaArgs(undefined), []);
  const base = { template: 'debian-12.0-x86_64', firstAddress: '10.8.0.10', lastAddress: '10.8.0.99', quota: { diskMiB: 4096, inodes: 200_000 } };
  t.deepEqual(parseInput(openVzDriverConfigSchema, base, 'hypervisor.yaml').quota, base.quota);
  t.throws(() => parseInput(openVzDriverConfigSchema, { ...base, backend: 'prlctl' }, 'hypervisor.yaml'), { message: /quota: expected backend vzctl/ });
  t.throws(() => parseInput(openVzDriverConfigSchema, { ...base, quota: { diskMiB: 4096 } }, 'hypervisor.yaml'), { message: /quota\.inodes/ });
});

test.serial('openvz: the fake vzctl holds the driver to vzctl(8)\'s --diskspace/--diskinodes syntax', async (t) => {
  const ctid = String(driver.ctid(own(9)));
  await driver.create(own(9));
  t.teardown(() => driver.destroy(own(9)));
  const bad = await fake.runner('vzctl', ['set', ctid, '--diskspace', '4096MiB', '--save']);
  t.is(bad.exitCode, 20);
  t.regex(bad.stderr, /Invalid value for --diskspace/);
  const good = await fake.runner('vzctl', ['set', ctid, '--diskspace', '1048576:2G', '--diskinodes', '1000', '--save']);
  t.is(good.exitCode, 0, good.stderr);
});

test('openvz: limits map onto vzctl and prlctl options; no swap unless given', (t) => {
  t.deepEqual(openVzLimitArgs({ memoryMiB: 512, numproc: 128 }, 'vzctl'), ['--ram', '512M', '--swap', '0', '--numproc', '128']);
  t.deepEqual(openVzLimitArgs({ memoryMiB: 512, swapMiB: 1 }, 'prlctl'), ['--memsize', '512', '--swappages', '256']);
  t.deepEqual(openVzLimitArgs({ cpuPercent: 50, cpus: '2,3' }, 'prlctl'), ['--cpulimit', '50', '--cpumask', '2,3']);
  t.deepEqual(openVzLimitArgs({}, 'vzctl'), []);
});
