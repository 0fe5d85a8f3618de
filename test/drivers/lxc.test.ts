import test from 'ava';
import { chmod, lstat, mkdtemp, readFile, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { runDriverConformance, sshExec, sshLogin } from '../../src/daemons/drivers/conformance.js';
import { runChecked } from '../../src/common/exec.js';
import { cgroupPathOf, LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { detectCgroupVersion, type LxcDriverConfig } from '../../src/daemons/drivers/lxc-config.js';
import { LAB_HOST_PACKAGES } from '../../src/lab/packages.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';
import { grantRootSubIds } from '../helpers/subids.js';

// Unique to this file: bridge vzsbt11 / 10.231.11.0/24, containers "vzl11-N", own lxcPath,
// unprivileged containers, each with 65536 ids of its own from the block at 100000000.
const INDEX = 11;
const IDMAP = { start: 100_000_000, count: 241 * 65536 };
const PREFIX = `vzl${INDEX}-`;
// Small enough to fill quickly: 128 MiB, 4096 inodes per container.
const QUOTA = { diskMiB: 128, inodes: 4096 };
let bridge: TestBridge | undefined;
let lxcPath: string | undefined;

function config(): LxcDriverConfig {
  return lxcConfigOn(bridge!, {
    prefix: PREFIX,
    lxcPath: lxcPath!,
    baseName: `vzl${INDEX}base`,
    limits: { memoryMiB: 256, cpuShares: 512, pidsMax: 512 },
    idmap: IDMAP,
    quota: QUOTA,
  });
}

let driver: LxcDriver;
let releaseSubIds: (() => Promise<void>) | undefined;

test.serial.before(async () => {
  releaseSubIds = await grantRootSubIds(IDMAP.start, IDMAP.count);
  bridge = await createTestBridge(INDEX);
  lxcPath = await mkdtemp(join(tmpdir(), `vzsb-lxc${INDEX}-`));
  await chmod(lxcPath, 0o711);
  driver = new LxcDriver({ config: config() });
});


runDriverConformance(test, 'lxc', () => driver, {
  ids: Array.from({ length: 10 }, (_, i) => `${PREFIX}${i + 1}`),
  quota: QUOTA,
});

// After the suite's own teardown (hooks run in the order they were registered).
test.serial.after.always(async () => {
  if (driver) for (const c of await driver.list().catch(() => [])) await driver.destroy(c.id).catch(() => undefined);
  if (lxcPath) await rm(lxcPath, { recursive: true, force: true });
  await bridge?.remove();
  await releaseSubIds?.();
});

const own = (n: number) => `${PREFIX}${100 + n}`;
/** The first host id of a container's own range: slot = its numeric suffix. */
const rangeStart = (id: string) => IDMAP.start + Number(id.slice(PREFIX.length)) * 65536;

test.serial('lxc: limits and the derived address are in the clone config', async (t) => {
  const id = own(1);
  const info = await driver.create(id);
  t.teardown(() => driver.destroy(id));
  t.is(info.address, bridge!.address(10 + 101));
  const text = await readFile(join(lxcPath!, id, 'config'), 'utf8');
  t.regex(text, new RegExp(`^lxc\\.net\\.0\\.ipv4\\.address = ${info.address!.replace(/\./g, '\\.')}/24$`, 'm'));
  t.regex(text, /^lxc\.cgroup2?\.pids\.max = 512$/m);
  t.regex(text, /^lxc\.cgroup2?\.memory\.(limit_in_bytes|max) = 268435456$/m);
  t.is(text.match(/^lxc\.net\.0\.link = /gm)?.length, 1);
});

test.serial('lxc: the memory and pids limits are in force on the running container', async (t) => {
  const id = own(2);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  // Read from the host: the container's init pid, its cgroup, the kernel's limit files.
  const pid = (await runChecked('lxc-info', ['-P', lxcPath!, '-n', id, '-p', '-H'])).stdout.trim();
  const membership = await readFile(`/proc/${pid}/cgroup`, 'utf8');
  // The processes are one level below the cgroup that holds the limits (lxc.cgroup.dir.container.inner).
  if (detectCgroupVersion() === 2) {
    const path = dirname(cgroupPathOf(membership, 2)!);
    t.is((await readFile(join('/sys/fs/cgroup', path, 'pids.max'), 'utf8')).trim(), '512');
    t.is((await readFile(join('/sys/fs/cgroup', path, 'memory.max'), 'utf8')).trim(), '268435456');
  } else {
    const path = dirname(cgroupPathOf(membership, 1)!);
    t.is((await readFile(join('/sys/fs/cgroup/pids', path, 'pids.max'), 'utf8')).trim(), '512');
    t.is((await readFile(join('/sys/fs/cgroup/memory', path, 'memory.limit_in_bytes'), 'utf8')).trim(), '268435456');
    t.is((await readFile(join('/sys/fs/cgroup/cpu', path, 'cpu.shares'), 'utf8')).trim(), '512');
  }
});

test.serial('lxc: authorizeKey writes the host\'s key directory, which the container reads and cannot change', async (t) => {
  const id = own(3);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  const keys = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'pre-start' });
  // Before the first start and after it alike.
  await driver.authorizeKey(id, keys.public);
  const onHost = join(lxcPath!, id, 'vzsb-keys', 'root');
  t.is(await readFile(onHost, 'utf8'), keys.public + '\n');
  const st = await stat(onHost);
  t.is(st.mode & 0o777, 0o644);
  t.is(st.uid, rangeStart(id), 'owned by the container\'s root, as sshd\'s StrictModes wants');
  await driver.start(id);
  t.is((await driver.exec(id, ['cat', '/etc/ssh/vzsb-keys/root'])).stdout, keys.public + '\n');
  const write = await driver.exec(id, ['/bin/sh', '-c', 'echo x > /etc/ssh/vzsb-keys/root; touch /etc/ssh/vzsb-keys/other; mount -o remount,rw /etc/ssh/vzsb-keys']);
  t.regex(write.stderr, /Read-only file system/);
  t.is(await readFile(onHost, 'utf8'), keys.public + '\n');
  t.deepEqual(await readdir(join(lxcPath!, id, 'vzsb-keys')), ['root']);
  const { address } = (await driver.list()).find((x) => x.id === id)!;
  const client = await sshLogin(address!, keys.private, (await driver.hostKey(id)).publicKey.split(' ')[1]!);
  t.is(await sshExec(client, 'id -u'), '0\n');
  client.end();
});

test.serial('lxc: no link, planted in the container or in the key directory, makes the host write a host file', async (t) => {
  const id = own(4);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  const canaryDir = await mkdtemp(join(tmpdir(), 'vzsb-canary-'));
  t.teardown(() => rm(canaryDir, { recursive: true, force: true }));
  const canary = join(canaryDir, 'host-file');
  await writeFile(canary, 'host content\n');
  // The student points root's .ssh at a path that is a host directory too...
  const plant = await driver.exec(id, ['/bin/sh', '-c', `rm -rf /root/.ssh && mkdir -p ${canaryDir} && ln -s ${canaryDir} /root/.ssh && ln -s ${canary} ${canaryDir}/authorized_keys`]);
  t.is(plant.exitCode, 0);
  // ...and links sit in the key directory (what root of a privileged container could place there).
  const keysDir = join(lxcPath!, id, 'vzsb-keys');
  await symlink(canary, join(keysDir, '.root.vzsb-new'));
  await symlink(canary, join(keysDir, 'root'));
  const keys = ssh2.utils.generateKeyPairSync('ed25519');
  await driver.authorizeKey(id, keys.public);
  t.is(await readFile(canary, 'utf8'), 'host content\n');
  t.deepEqual(await readdir(canaryDir), ['host-file']);
  t.true((await lstat(join(keysDir, 'root'))).isFile());
  t.deepEqual(await readdir(keysDir), ['root']);
  const { address } = (await driver.list()).find((x) => x.id === id)!;
  const client = await sshLogin(address!, keys.private, (await driver.hostKey(id)).publicKey.split(' ')[1]!);
  t.is(await sshExec(client, 'hostname'), `${id}\n`);
  client.end();
});

test.serial('lxc: sessions are counted from the host even after the student deletes every tool', async (t) => {
  const id = own(5);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  const wipe = await driver.exec(id, ['/bin/sh', '-c', 'rm -rf /usr/bin/ps /bin/ps /usr/bin/pgrep /usr/bin/cat; echo done']);
  t.is(wipe.stdout, 'done\n');
  t.is(await driver.sessionCount(id), 0);
});

test.serial('lxc: ids outside the prefix or the address range are refused with the reason', async (t) => {
  await t.throwsAsync(driver.create('other-1'), { code: 'E_INVALID', message: /expected "vzl11-" followed by digits/ } as never);
  await t.throwsAsync(driver.create(`${PREFIX}999`), { code: 'E_INVALID', message: /beyond the address range/ } as never);
});

test.serial('lxc: a container whose sshd cannot start fails start with a clear error, quickly', async (t) => {
  const id = own(6);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  // No host key: sshd exits at once, the container stops.
  const upper = join(lxcPath!, id, 'overlay', 'delta', 'etc', 'ssh');
  await rm(join(upper, 'ssh_host_ed25519_key'));
  const started = Date.now();
  const err = await t.throwsAsync(driver.start(id));
  t.is((err as { code?: string }).code, 'E_DRIVER_RUNTIME');
  t.regex(err!.message, new RegExp(`container ${id}: sshd at ${bridge!.address(10 + 106).replace(/\./g, '\\.')}:22 will not answer: the container stopped`));
  t.true(Date.now() - started < 5000, 'noticed the stop well before the 10 s timeout');
});

test.serial('lxc: a changed base definition builds a new tree; running clones of the old one keep working', async (t) => {
  const base = join(lxcPath!, `vzl${INDEX}base`);
  const treeOf = async () => /^lxc\.rootfs\.path = dir:(.+)$/m.exec(await readFile(join(base, 'config'), 'utf8'))![1]!;
  const before = await treeOf();
  const marker = join(before, 'vzsb-test-marker');
  await writeFile(marker, 'x');
  await driver.prepare();
  t.is(await treeOf(), before, 'an unchanged definition leaves the base alone');
  const old = own(7);
  await driver.create(old);
  t.teardown(() => driver.destroy(old));
  await driver.start(old);
  // Another definition of the same base: more packages (the lab hosts' list, whose root
  // filesystem the lab tests build on this machine anyway), and privileged containers.
  const { idmap: _unused, ...rest } = config();
  const other = new LxcDriver({ config: { ...rest, privileged: true, packages: [...LAB_HOST_PACKAGES] } });
  await other.prepare();
  const after = await treeOf();
  t.not(after, before);
  t.is(await readFile(marker, 'utf8'), 'x', 'the old tree stays while a clone uses it');
  t.is((await driver.exec(old, ['cat', '/vzsb-test-marker'])).stdout, 'x');
  const fresh = own(9);
  await other.create(fresh);
  t.teardown(() => other.destroy(fresh));
  await other.start(fresh);
  t.is((await other.exec(fresh, ['/bin/sh', '-c', 'test -e /vzsb-test-marker; echo $?'])).stdout, '1\n', 'new clones use the new tree');
  await other.destroy(fresh);
  await driver.destroy(old);
  // Back to this file's definition: its complete tree is reused, the unused one removed.
  await driver.prepare();
  t.is(await treeOf(), before);
  t.deepEqual((await readdir(base)).filter((n) => /^rootfs-[0-9a-f]{16}$/.test(n)), [before.split('/').pop()]);
  await rm(marker);
});

test.serial('lxc: the container root is an unprivileged host uid; setuid bits survive the id shift', async (t) => {
  const id = own(8);
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  await driver.start(id);
  const pid = (await runChecked('lxc-info', ['-P', lxcPath!, '-n', id, '-p', '-H'])).stdout.trim();
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  t.regex(status, new RegExp(`^Uid:\\s+${rangeStart(id)}\\s`, 'm'), 'sshd (the init) runs as the mapped uid on the host');
  const inside = await driver.exec(id, ['/bin/sh', '-c', 'id -u; cat /proc/self/uid_map; stat -c %a:%u /usr/bin/passwd /root /']);
  t.is(inside.stdout.split("\n").map((l) => l.trim().replace(/\s+/g, " ")).join("\n").trim(), `0\n0 ${rangeStart(id)} 65536\n4755:0\n700:0\n755:0`);
});
