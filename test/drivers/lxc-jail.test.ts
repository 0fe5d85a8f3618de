import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseInput } from '../../src/common/validate.js';
import { applyParentCgroup, parentCgroupPlan } from '../../src/daemons/drivers/lxc-cgroup.js';
import { cloneConfigBlock, containerIdRange, idBlock, limitKeys, lxcDriverConfigSchema, overlayLowerDir, stripOwnedKeys } from '../../src/daemons/drivers/lxc-config.js';
import { SECCOMP_DENIED, seccompProfile } from '../../src/daemons/drivers/lxc-seccomp.js';
import { checkSubIds, covers, grantedToRoot } from '../../src/daemons/drivers/subids.js';

// The jail's pure parts: id ranges, cgroup placement and limits, the seccomp profile, the
// subordinate id check. What they do to real containers: test/drivers/lxc.test.ts and
// test/e2e/hostile.test.ts.

const valid = { bridge: 'vzsbr0', subnet: '10.231.0.0/24', gateway: '10.231.0.1', firstAddress: '10.231.0.10', lastAddress: '10.231.0.250' };
const parse = (extra: Record<string, unknown> = {}) => parseInput(lxcDriverConfigSchema, { ...valid, ...extra }, 'hypervisor.yaml');

test('jail config: unprivileged by default, with a block of 65536 ids per address', (t) => {
  const c = parse();
  t.false(c.privileged);
  t.deepEqual(idBlock(c), { start: 1_000_000_000, count: 241 * 65536 });
  t.deepEqual(c.parentCgroup, { name: 'vzsandbox', memoryReserveMiB: 1024, pidsMax: 32768 });
  t.is(containerIdRange(parse({ privileged: true }), 'vzsb-3'), undefined);
});

test('jail config: every container has its own range, stable per slot, never shared', (t) => {
  const c = parse({ idmap: { start: 2_000_000 } });
  t.deepEqual(containerIdRange(c, 'vzsb-0'), { start: 2_000_000, count: 65536 });
  t.deepEqual(containerIdRange(c, 'vzsb-0007'), { start: 2_000_000 + 7 * 65536, count: 65536 });
  t.deepEqual(containerIdRange(c, 'vzsb-7'), containerIdRange(c, 'vzsb-0007'), 'the slot is the number: a reset keeps its range');
  const ranges = Array.from({ length: 241 }, (_, i) => containerIdRange(c, `vzsb-${i}`)!);
  for (let i = 1; i < ranges.length; i++) t.true(ranges[i]!.start >= ranges[i - 1]!.start + ranges[i - 1]!.count);
  const block = idBlock(c);
  t.true(ranges.at(-1)!.start + 65536 <= block.start + block.count, 'all inside the block root is granted');
  // A block given smaller than the address range needs: refused at config load, and per id.
  t.throws(() => parse({ idmap: { start: 2_000_000, count: 65536 * 10 } }), { message: /idmap\.count: expected at least 15794176 \(241 containers/ });
  t.throws(() => parse({ idmap: { start: 4_290_000_000 } }), { message: /idmap\.start: expected a start at most/ });
  t.throws(() => containerIdRange({ ...c, idmap: { start: 2_000_000, count: 65536 * 2 } }, 'vzsb-2'), { message: /id range \(slot 2\) is beyond the id block/ });
});

test('jail config: limits (memory, swap, CPU set and quota, pids) for cgroup v1 and v2', (t) => {
  const limits = { memoryMiB: 256, swapMiB: 128, cpus: '0-1', cpuPercent: 150, pidsMax: 100 };
  t.deepEqual(limitKeys(limits, 1), [
    ['lxc.cgroup.memory.limit_in_bytes', '268435456'],
    ['lxc.cgroup.memory.memsw.limit_in_bytes', String(384 * 1024 * 1024)],
    ['lxc.cgroup.cpu.cfs_period_us', '100000'],
    ['lxc.cgroup.cpu.cfs_quota_us', '150000'],
    ['lxc.cgroup.cpuset.cpus', '0-1'],
    ['lxc.cgroup.pids.max', '100'],
  ]);
  t.deepEqual(limitKeys(limits, 2), [
    ['lxc.cgroup2.memory.max', '268435456'],
    ['lxc.cgroup2.memory.swap.max', String(128 * 1024 * 1024)],
    ['lxc.cgroup2.cpu.max', '150000 100000'],
    ['lxc.cgroup2.cpuset.cpus', '0-1'],
    ['lxc.cgroup2.pids.max', '100'],
  ]);
  t.throws(() => parse({ limits: { swapMiB: 10 } }), { message: /limits\.swapMiB: expected memoryMiB as well/ });
  t.throws(() => parse({ limits: { cpus: 'all' } }), { message: /limits\.cpus: expected a CPU list/ });
});

test('jail config: the clone block maps the ids, puts limits one level above the container, names our seccomp profile', (t) => {
  const c = parse({ idmap: { start: 2_000_000 }, limits: { pidsMax: 64 }, lxcPath: '/var/lib/vzsandbox/containers' });
  const block = cloneConfigBlock(c, 'vzsb-3', 1, '/var/lib/vzsandbox/containers/vzsb-base/vzsb.seccomp');
  const lines = block.split('\n');
  const at = (line: string) => lines.indexOf(line);
  t.true(at('lxc.include = /usr/share/lxc/config/userns.conf') >= 0);
  t.true(at(`lxc.idmap = u 0 ${2_000_000 + 3 * 65536} 65536`) > at('lxc.include = /usr/share/lxc/config/userns.conf'));
  t.true(at(`lxc.idmap = g 0 ${2_000_000 + 3 * 65536} 65536`) >= 0);
  t.true(at('lxc.cgroup.devices.deny = a') > at('lxc.include = /usr/share/lxc/config/userns.conf'), 'device rules come back after userns.conf cleared them');
  t.true(at('lxc.cgroup.dir.container = vzsandbox/vzsb-3') >= 0);
  t.true(at('lxc.cgroup.dir.container.inner = ns') >= 0);
  t.true(at('lxc.cgroup.dir.monitor = vzsandbox.monitor/vzsb-3') >= 0);
  t.true(at('lxc.cgroup.pids.max = 64') >= 0);
  t.true(at('lxc.seccomp.profile = /var/lib/vzsandbox/containers/vzsb-base/vzsb.seccomp') >= 0);
  t.true(at('lxc.seccomp.allow_nesting = 1') >= 0, 'also loaded where the daemon already runs under a filter (a lab host)');
  t.true(at('lxc.mount.auto = cgroup:mixed proc:mixed sys:mixed') > at('lxc.mount.auto ='));
  const v2 = cloneConfigBlock(c, 'vzsb-3', 2);
  t.regex(v2, /^lxc\.cgroup2\.devices\.deny = a$/m);
  t.notRegex(v2, /seccomp/);
  const privileged = cloneConfigBlock(parse({ privileged: true }), 'vzsb-3', 1);
  t.notRegex(privileged, /idmap|userns/);
  t.regex(privileged, /^lxc\.cgroup\.dir\.container\.inner = ns$/m, 'the limits are out of reach in privileged mode too');
});

test('jail config: re-applying the clone block, also over a config written before the end mark', (t) => {
  const c = parse({ idmap: { start: 2_000_000 } });
  const fromCopy = 'lxc.include = /usr/share/lxc/config/common.conf\nlxc.rootfs.path = overlay:/b/rootfs-0123456789abcdef-u2196608:/c/overlay/delta\nlxc.uts.name = vzsb-3\n';
  const once = stripOwnedKeys(fromCopy) + cloneConfigBlock(c, 'vzsb-3', 1, '/p');
  t.is(stripOwnedKeys(once) + cloneConfigBlock(c, 'vzsb-3', 1, '/p'), once);
  t.is(overlayLowerDir(once), '/b/rootfs-0123456789abcdef-u2196608');
  const older = fromCopy + '# vzsandbox: per-container settings\nlxc.net.0.type = veth\nlxc.cgroup.pids.max = 5\n';
  t.is(stripOwnedKeys(older), fromCopy);
});

test('seccomp profile: LXC format 2 deny list with what the jail promises to take away', (t) => {
  const text = seccompProfile();
  const [version, kind, ...rest] = text.split('\n');
  t.is(version, '2');
  t.is(kind, 'denylist');
  t.true(rest.includes('[all]'));
  for (const name of ['bpf', 'perf_event_open', 'keyctl', 'add_key', 'request_key', 'init_module', 'finit_module', 'delete_module', 'kexec_load', 'kexec_file_load', 'open_by_handle_at', 'syslog']) {
    t.true(rest.includes(`${name} errno 1`), name);
  }
  t.is(new Set(SECCOMP_DENIED).size, SECCOMP_DENIED.length);
  for (const allowed of ['mount', 'unshare', 'setns', 'clone', 'reboot']) t.false(SECCOMP_DENIED.includes(allowed), allowed);
});

test('subordinate ids: root must be granted the whole block when newuidmap is installed', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-subids-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const files = { subuid: join(dir, 'subuid'), subgid: join(dir, 'subgid'), newuidmap: join(dir, 'newuidmap') };
  const block = { start: 1_000_000, count: 3 * 65536 };
  await writeFile(files.subuid, 'alice:100000:65536\nroot:1000000:65536\nroot:1065536:131072\n');
  await writeFile(files.subgid, 'root:1000000:65536\n');
  // No newuidmap: LXC writes the maps itself, nothing to check.
  await checkSubIds(block, files);
  await writeFile(files.newuidmap, '');
  await t.throwsAsync(checkSubIds(block, files), { message: new RegExp(`${files.subgid} does not grant root the id block 1000000-1196607 .*add "root:1000000:196608"`) });
  await writeFile(files.subgid, '0:900000:500000\n');
  await checkSubIds(block, files);
  t.deepEqual(grantedToRoot('root:5:10\nbob:1:2\n0:7:1\nroot:x:1\n'), [{ start: 5, count: 10 }, { start: 7, count: 1 }]);
  t.false(covers([{ start: 0, count: 10 }, { start: 11, count: 10 }], { start: 5, count: 10 }), 'a gap');
  t.true(covers([{ start: 11, count: 10 }, { start: 0, count: 11 }], { start: 5, count: 10 }));
});

test('parent cgroup: v1 limits in their hierarchies, cpuset filled; v2 with controllers enabled', async (t) => {
  const host = { memTotalBytes: 8 * 1024 ** 3, cpus: '0-3', mems: '0' };
  const v1 = parentCgroupPlan({ name: 'vzsandbox', memoryReserveMiB: 1024, pidsMax: 5000 }, 1, host);
  t.deepEqual(v1.dirs, ['memory/vzsandbox', 'pids/vzsandbox', 'cpuset/vzsandbox']);
  t.deepEqual(v1.writes, [
    { path: 'cpuset/vzsandbox/cpuset.cpus', value: '0-3' },
    { path: 'cpuset/vzsandbox/cpuset.mems', value: '0' },
    { path: 'memory/vzsandbox/memory.limit_in_bytes', value: String(7 * 1024 ** 3) },
    { path: 'pids/vzsandbox/pids.max', value: '5000' },
  ]);
  const v2 = parentCgroupPlan({ name: 'a/b', memoryReserveMiB: 0, pidsMax: 0 }, 2, host);
  t.deepEqual(v2.dirs, ['a', 'a/b']);
  t.deepEqual(v2.writes.slice(-2), [
    { path: 'a/b/memory.max', value: 'max' },
    { path: 'a/b/pids.max', value: 'max' },
  ]);
  // Applied to a directory standing in for /sys/fs/cgroup: only files the kernel would have are written.
  const root = await mkdtemp(join(tmpdir(), 'vzsb-cgroot-'));
  t.teardown(() => rm(root, { recursive: true, force: true }));
  await mkdir(join(root, 'memory'));
  await mkdir(join(root, 'pids/vzsandbox'), { recursive: true });
  await writeFile(join(root, 'pids/vzsandbox/pids.max'), 'max');
  await applyParentCgroup(root, v1);
  t.is(await readFile(join(root, 'pids/vzsandbox/pids.max'), 'utf8'), '5000');
  t.is(await readFile(join(root, 'memory/vzsandbox/memory.limit_in_bytes'), 'utf8').catch(() => 'absent'), 'absent', 'no such file: not made up');
  await t.throwsAsync(readFile(join(root, 'cpuset/vzsandbox/cpuset.cpus')), undefined, 'no cpuset hierarchy mounted: skipped');
});
