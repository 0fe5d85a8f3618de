import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runChecked } from '../../src/common/exec.js';
import { parseInput } from '../../src/common/validate.js';
import {
  cloneConfigBlock,
  containerAddress,
  containerMac,
  limitKeys,
  lxcDriverConfigSchema,
  overlayUpperDir,
  sharesToWeight,
  stripOwnedKeys,
} from '../../src/daemons/drivers/lxc-config.js';
import { cgroupPathOf } from '../../src/daemons/drivers/lxc.js';
import { fingerprint, generateHostKey } from '../../src/daemons/drivers/ssh-hostkey.js';
import { waitForSsh } from '../../src/daemons/drivers/ssh-ready.js';
import { guardRuleset, guardTableName, hostVethName } from '../../src/daemons/drivers/bridge-guard.js';
import { parseConntrack, SshConnections } from '../../src/daemons/drivers/ssh-connections.js';

const valid = {
  bridge: 'vzsbr0',
  subnet: '10.231.0.0/24',
  gateway: '10.231.0.1',
  firstAddress: '10.231.0.10',
  lastAddress: '10.231.0.250',
};

test('config: defaults fill in; the result is a usable driver config', (t) => {
  const c = parseInput(lxcDriverConfigSchema, valid, 'hypervisor.yaml');
  t.is(c.prefix, 'vzsb-');
  t.is(c.lxcPath, '/var/lib/lxc');
  t.is(c.baseName, 'vzsb-base');
  t.deepEqual(c.limits, {});
  t.is(containerAddress(c, 'vzsb-0000'), '10.231.0.10');
  t.is(containerAddress(c, 'vzsb-0007'), '10.231.0.17');
  t.is(containerAddress(c, 'vzsb-240'), '10.231.0.250');
  t.throws(() => containerAddress(c, 'vzsb-241'), { message: /beyond the address range/ });
  t.throws(() => containerAddress(c, 'vzsb-x1'), { message: /expected "vzsb-" followed by digits/ });
});

test('config: bad fields are named by their dotted path', (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...valid, gateway: '10.9.0.1' }, /gateway: expected an address inside 10\.231\.0\.0\/24/],
    [{ ...valid, lastAddress: '10.231.0.5' }, /lastAddress: expected an address not below firstAddress/],
    [{ ...valid, gateway: '10.231.0.20' }, /gateway: expected an address outside/],
    [{ ...valid, bridge: 'a-very-long-bridge-name' }, /bridge: expected an interface name/],
    [{ ...valid, limits: { memoryMiB: 'lots' } }, /limits\.memoryMiB: expected number, got "lots"/],
    [{ ...valid, limits: { cpu: 3 } }, /limits: unknown field cpu/],
    [{ ...valid, subnet: '10.231.0.0' }, /subnet: expected an IPv4 network/],
    [{ ...valid, baseName: 'vzsb-01' }, /baseName: expected a name that is not a container id/],
    [{ ...valid, packages: ['ok', 'Bad Name'] }, /packages\[1\]: expected a Debian package name/],
  ];
  for (const [input, message] of cases) {
    t.throws(() => parseInput(lxcDriverConfigSchema, input, 'hypervisor.yaml'), { message }, JSON.stringify(input));
  }
});

test('config: limit keys for cgroup v1 and v2', (t) => {
  const limits = { memoryMiB: 256, cpuShares: 1024, pidsMax: 100 };
  t.deepEqual(limitKeys(limits, 1), [
    ['lxc.cgroup.memory.limit_in_bytes', '268435456'],
    ['lxc.cgroup.cpu.shares', '1024'],
    ['lxc.cgroup.pids.max', '100'],
  ]);
  t.deepEqual(limitKeys(limits, 2), [
    ['lxc.cgroup2.memory.max', '268435456'],
    ['lxc.cgroup2.cpu.weight', '39'],
    ['lxc.cgroup2.pids.max', '100'],
  ]);
  t.is(sharesToWeight(2), 1);
  t.is(sharesToWeight(262144), 10000);
  t.deepEqual(limitKeys({}, 1), []);
});

test('config: re-applying the clone block replaces the owned keys, keeps the rest', (t) => {
  const c = parseInput(lxcDriverConfigSchema, { ...valid, limits: { pidsMax: 64 } }, 'x');
  const fromCopy = 'lxc.include = /usr/share/lxc/config/common.conf\nlxc.net.0.hwaddr = 00:16:3e:aa:bb:cc\nlxc.rootfs.path = overlay:/b/rootfs:/c/overlay/delta\nlxc.uts.name = vzsb-3\n';
  const once = stripOwnedKeys(fromCopy) + cloneConfigBlock(c, 'vzsb-3', 1);
  const twice = stripOwnedKeys(once) + cloneConfigBlock(c, 'vzsb-3', 1);
  t.is(twice, once);
  t.regex(once, /^lxc\.net\.0\.hwaddr = 02:56:0a:e7:00:0d$/m);
  t.notRegex(once, /00:16:3e/);
  t.regex(once, /^lxc\.net\.0\.ipv4\.address = 10\.231\.0\.13\/24$/m);
  t.regex(once, /^lxc\.net\.0\.ipv4\.gateway = 10\.231\.0\.1$/m);
  t.regex(once, /^lxc\.cgroup\.pids\.max = 64$/m);
  t.is(overlayUpperDir(once), '/c/overlay/delta');
  t.is(overlayUpperDir('lxc.rootfs.path = dir:/x/rootfs\n'), undefined);
  t.is(containerMac('10.231.0.13'), '02:56:0a:e7:00:0d');
});

test('cgroup path of a process, v1 pids controller and v2 unified', (t) => {
  const membership = '12:pids:/lxc.payload.a\n4:memory:/lxc.payload.a\n1:name=systemd:/x\n0::/lxc.payload.b\n';
  t.is(cgroupPathOf(membership, 1), '/lxc.payload.a');
  t.is(cgroupPathOf(membership, 2), '/lxc.payload.b');
  t.is(cgroupPathOf('', 1), undefined);
});

test('conntrack lines: /proc/net/nf_conntrack and conntrack -L formats, original direction', (t) => {
  const proc = 'ipv4     2 tcp      6 431999 ESTABLISHED src=10.0.0.2 dst=10.231.0.11 sport=51000 dport=22 src=10.231.0.11 dst=10.0.0.2 sport=22 dport=51000 [ASSURED] mark=0 zone=0 use=2';
  const tool = 'tcp      6 117 TIME_WAIT src=10.0.0.2 dst=10.231.0.12 sport=51001 dport=22 src=10.231.0.12 dst=10.0.0.2 sport=22 dport=51001 [ASSURED] mark=0 use=1';
  const udp = 'ipv4     2 udp      17 20 src=10.0.0.2 dst=10.0.0.3 sport=53 dport=53 src=10.0.0.3 dst=10.0.0.2 sport=53 dport=53 mark=0 zone=0 use=2';
  t.deepEqual(parseConntrack([proc, tool, udp, 'conntrack v1.4.7 (conntrack-tools): 2 flow entries have been shown.', ''].join('\n')), [
    { timeout: 431999, state: 'ESTABLISHED', src: '10.0.0.2', dst: '10.231.0.11', sport: 51000, dport: 22 },
    { timeout: 117, state: 'TIME_WAIT', src: '10.0.0.2', dst: '10.231.0.12', sport: 51001, dport: 22 },
  ]);
});

test('session liveness: one table read serves a burst of counts; only fresh established connections from a source count', async (t) => {
  let reads = 0;
  const line = (src: string, dst: string, timeout: number, state = 'ESTABLISHED') =>
    `ipv4     2 tcp      6 ${timeout} ${state} src=${src} dst=${dst} sport=5${timeout % 1000} dport=22 src=${dst} dst=${src} sport=22 dport=5${timeout % 1000} [ASSURED] mark=0 zone=0 use=2`;
  const table = [line('10.0.0.2', '10.231.0.11', 299), line('10.0.0.2', '10.231.0.11', 150), line('10.0.0.2', '10.231.0.11', 299, 'FIN_WAIT'), line('10.231.0.12', '10.231.0.11', 300), line('10.0.0.2', '10.231.0.12', 300)].join('\n');
  const c = new SshConnections({ sources: ['10.0.0.2'], readTable: async () => (reads++, table), readEstablishedTimeout: async () => 300, staleSeconds: 120 });
  t.deepEqual(await Promise.all([c.count('10.231.0.11'), c.count('10.231.0.12'), c.count('10.231.0.13')]), [1, 1, 0]);
  t.is(reads, 1);
});

test('bridge guard: port names bind to the id; the ruleset lists each port with its MAC and address', (t) => {
  const config = { ...valid, prefix: 'vzsb-' };
  const name = hostVethName(config, 'vzsb-0007');
  t.regex(name, /^vz[0-9a-f]{4}-7$/);
  t.not(hostVethName({ ...config, bridge: 'other0' }, 'vzsb-0007'), name, 'another bridge, other names');
  t.throws(() => hostVethName(config, 'vzsb-123456789'), { message: /too large/ });
  const rules = guardRuleset(config);
  t.true(rules.includes(`"${name}" . ${containerMac('10.231.0.17')} . 10.231.0.17`));
  t.is(rules.match(/ \. 10\.231\.0\.\d+/g)!.length, 241, 'every address of the range, once');
  t.regex(rules, /hook prerouting priority -300/);
  t.true(rules.startsWith('# vzsandbox') && rules.includes(`delete table bridge ${guardTableName(config.bridge)}`));
  t.regex(cloneConfigBlock({ ...config, lxcPath: '/var/lib/lxc', baseName: 'b', limits: {}, packages: [], startTimeoutMs: 1000 }, 'vzsb-0007', 1), new RegExp(`^lxc\\.net\\.0\\.veth\\.pair = ${name}$`, 'm'));
});

test('host keys: fresh per call, fingerprint equals ssh-keygen -lf', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-hostkey-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const a = await generateHostKey(run, dir, 'root@a');
  const b = await generateHostKey(run, dir, 'root@b');
  t.not(a.publicKey, b.publicKey);
  t.regex(a.privateKey, /^-----BEGIN OPENSSH PRIVATE KEY-----/);
  t.regex(a.publicKey, /^ssh-ed25519 \S+ root@a$/);
  const listed = await runChecked('ssh-keygen', ['-lf', '-'], { input: a.publicKey + '\n' });
  t.is(listed.stdout.split(' ')[1], fingerprint(a.publicKey));
  t.throws(() => fingerprint('ssh-ed25519 AAAAB3NzaC1yc2EAAAADAQABAAABAQ'), { message: /does not match its type/ });
});

test('waitForSsh: resolves on a banner that comes late, on a server that starts late', async (t) => {
  const late = createServer((s) => setTimeout(() => s.end('SSH-2.0-test\r\n'), 300));
  await new Promise<void>((r) => late.listen(0, '127.0.0.1', r));
  t.teardown(() => late.close());
  await waitForSsh({ host: '127.0.0.1', port: (late.address() as AddressInfo).port, timeoutMs: 5000, what: 'late banner' });
  // A port nobody listens on yet: refused until the server starts.
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const port = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const waiting = waitForSsh({ host: '127.0.0.1', port, timeoutMs: 5000, what: 'late server' });
  await new Promise((r) => setTimeout(r, 200));
  const server = createServer((s) => s.end('SSH-2.0-test\r\n'));
  await new Promise<void>((r) => server.listen(port, '127.0.0.1', r));
  t.teardown(() => server.close());
  await waiting;
  t.pass();
});

test('waitForSsh: a clear error on timeout, on a wrong greeting, and when told to give up', async (t) => {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const closed = (probe.address() as AddressInfo).port;
  await new Promise<void>((r) => probe.close(() => r()));
  const started = Date.now();
  await t.throwsAsync(waitForSsh({ host: '127.0.0.1', port: closed, timeoutMs: 400, what: 'container x' }), {
    code: 'E_DRIVER_RUNTIME',
    message: new RegExp(`^container x: sshd at 127\\.0\\.0\\.1:${closed} did not answer within 400 ms \\(ECONNREFUSED\\)$`),
  } as never);
  t.true(Date.now() - started < 2000);
  const http = createServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  t.teardown(() => http.close());
  await t.throwsAsync(waitForSsh({ host: '127.0.0.1', port: (http.address() as AddressInfo).port, timeoutMs: 300, what: 'y' }), {
    message: /not an SSH banner: "HTTP/,
  } as never);
  await t.throwsAsync(waitForSsh({ host: '127.0.0.1', port: closed, timeoutMs: 10_000, what: 'z', giveUp: async () => 'the container stopped' }), {
    message: /^z: sshd at .* will not answer: the container stopped$/,
  } as never);
});
