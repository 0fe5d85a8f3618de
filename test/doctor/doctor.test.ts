/**
 * `vzsb doctor` and the pre-flight checks with their roots pointed at directories the test
 * makes: each missing piece is named with the package or setting that provides it. Runs on any
 * machine with a POSIX sh (nothing here reads the real system's state but `uname`).
 */
import test from 'ava';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { CHECKS, checksFor, checksScript, parseCheckOutput } from '../../src/doctor/checks.js';
import { runChecks } from '../../src/doctor/run.js';
import { createLab } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { preflightFact } from '../../src/provision/facts/preflight.js';
import { collectingReporter } from '../helpers/deploy.js';

const entry = join(import.meta.dirname, '../../src/cli/entry.ts');
const vzsb = (...args: string[]) => run(process.execPath, ['--import', 'tsx', entry, ...args], { timeoutMs: 60_000 });
const tmp = (p: string) => mkdtempSync(join(tmpdir(), p));

/** A fake /proc, /sys and cgroup root of a machine that has everything (cgroup v1, like this one). */
function healthyRoots() {
  const dir = tmp('vzsb-doctor-');
  const proc = join(dir, 'proc');
  mkdirSync(join(proc, 'sys/user'), { recursive: true });
  mkdirSync(join(proc, 'sys/fs/inotify'), { recursive: true });
  writeFileSync(join(proc, 'sys/user/max_user_namespaces'), '15000\n');
  writeFileSync(join(proc, 'sys/fs/inotify/max_user_instances'), '100000\n');
  writeFileSync(join(proc, 'sys/fs/inotify/max_user_watches'), '1000000\n');
  writeFileSync(join(proc, 'filesystems'), 'nodev\tproc\nnodev\toverlay\n');
  writeFileSync(join(proc, 'kallsyms'), ['veth_xmit', 'br_dev_xmit', 'nf_tables_newtable', 'loop_configure'].map((s) => `0000000000000000 t ${s}`).join('\n') + '\n');
  writeFileSync(join(proc, 'cgroups'), '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t2\t1\t1\npids\t3\t1\t1\n');
  const cgroup = join(dir, 'cgroup');
  for (const c of ['cpu,cpuacct', 'memory', 'pids']) mkdirSync(join(cgroup, c), { recursive: true });
  const dev = join(dir, 'dev');
  mkdirSync(dev);
  writeFileSync(join(dev, 'loop-control'), '');
  const lxc = join(dir, 'lxc-config');
  mkdirSync(lxc);
  for (const f of ['common.conf', 'nesting.conf', 'userns.conf']) writeFileSync(join(lxc, f), '');
  return { dir, proc, sys: join(dir, 'sys'), cgroup, dev, lxcConfigDir: lxc, modules: join(dir, 'modules') };
}

const hostChecks = (results: Awaited<ReturnType<typeof runChecks>>) => results.filter((r) => !r.check.id.startsWith('packages.') && r.check.id !== 'system.root');

test('with every root in place every kernel, cgroup, limit and file check passes', async (t) => {
  const roots = healthyRoots();
  const results = hostChecks(await runChecks({ roots }));
  t.deepEqual(results.filter((r) => !r.ok).map((r) => `${r.check.id}: ${r.detail}`), []);
  t.true(results.length >= 12);
});

test('an LXC config directory without the snippets: doctor exits 1 and names liblxc-common', async (t) => {
  const empty = tmp('vzsb-doctor-lxc-');
  const r = await vzsb('doctor', '--lxc-config-dir', empty);
  t.is(r.exitCode, 1, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`FAIL  files\\.lxc_config .*not found: ${empty}/common\\.conf ${empty}/nesting\\.conf ${empty}/userns\\.conf`));
  t.regex(r.stdout, /fix: apt-get install --no-install-recommends liblxc-common \(comes with lxc/);
  t.regex(r.stdout, /checks failed$/m);
});

test('programs not found name their packages', async (t) => {
  const roots = { ...healthyRoots(), binDirs: [tmp('vzsb-doctor-bin-')] };
  const failed = (await runChecks({ roots })).filter((r) => !r.ok && r.check.id.startsWith('packages.'));
  const byId = new Map(failed.map((r) => [r.check.id, r]));
  t.regex(byId.get('packages.lxc')?.detail ?? '', /not found: lxc-start lxc-stop lxc-copy/);
  t.regex(byId.get('packages.lxc')?.check.fix ?? '', /install --no-install-recommends lxc /);
  t.truthy(byId.get('packages.debootstrap'));
  t.truthy(byId.get('packages.openssh-server'));
});

test('kernel and cgroup pieces missing name the sysctl or setting', async (t) => {
  const roots = healthyRoots();
  writeFileSync(join(roots.proc, 'sys/user/max_user_namespaces'), '0\n');
  writeFileSync(join(roots.proc, 'filesystems'), 'nodev\tproc\n');
  writeFileSync(join(roots.proc, 'kallsyms'), '');
  writeFileSync(join(roots.proc, 'cgroups'), '#subsys_name\thierarchy\tnum_cgroups\tenabled\ncpu\t1\t1\t1\nmemory\t2\t1\t0\npids\t3\t1\t1\n');
  writeFileSync(join(roots.proc, 'sys/fs/inotify/max_user_instances'), '128\n');
  const results = await runChecks({ roots, labHosts: 50 });
  const fail = (id: string) => results.find((r) => r.check.id === id && !r.ok);
  t.regex(fail('kernel.userns')?.check.fix ?? '', /sysctl user\.max_user_namespaces=/);
  t.regex(fail('kernel.overlay')?.check.fix ?? '', /modprobe overlay/);
  t.regex(fail('kernel.veth')?.check.fix ?? '', /modprobe veth/);
  t.regex(fail('kernel.nftables')?.check.fix ?? '', /modprobe nf_tables/);
  t.regex(fail('cgroup.memory')?.check.fix ?? '', /cgroup_enable=memory/);
  t.regex(fail('limits.inotify_instances')?.detail ?? '', /^fs\.inotify\.max_user_instances = 128, about \d+ needed for 50 lab hosts/);
  t.regex(fail('limits.inotify_instances')?.check.fix ?? '', /sysctl fs\.inotify\.max_user_instances=/);
  t.falsy(fail('kernel.br_netfilter'), 'br_netfilter is reported, either state works');
  t.falsy(fail('cgroup.pids'));
});

test('cgroup v2: controllers are read from cgroup.controllers', async (t) => {
  const roots = healthyRoots();
  const v2 = tmp('vzsb-doctor-cg2-');
  writeFileSync(join(v2, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  const results = await runChecks({ roots: { ...roots, cgroup: v2 } });
  t.regex(results.find((r) => r.check.id === 'cgroup.layout')!.detail, /cgroup v2 at .*: cpuset cpu io memory pids/);
  t.true(results.filter((r) => r.check.id.startsWith('cgroup.')).every((r) => r.ok));
  writeFileSync(join(v2, 'cgroup.controllers'), 'cpu io\n');
  const fewer = await runChecks({ roots: { ...roots, cgroup: v2 } });
  t.deepEqual(fewer.filter((r) => !r.ok).map((r) => r.check.id), ['cgroup.memory', 'cgroup.pids']);
});

test("the roles' fact runs the same checks as the doctor, one record each, and never fails the facts script", async (t) => {
  const checks = checksFor(['hypervisor']);
  t.true(checks.some((c) => c.id === 'kernel.overlay'));
  t.false(checks.some((c) => c.id.startsWith('packages.') || c.id === 'files.lxc_config'), 'packages are installed by the play itself');
  t.true(checksFor(['balancer']).every((c) => c.on.includes('balancer')));
  const r = await run('sh', ['-ec', `${preflightFact.command('hypervisor')}\necho end`], { env: { ...process.env, VZSB_PROC: '/nonexistent', VZSB_CGROUP: '/nonexistent' } });
  t.is(r.exitCode, 0);
  t.regex(r.stdout, /end\n$/);
  const results = preflightFact.parse(r.stdout, 'hypervisor');
  t.is(results.length, checks.length);
  t.true(results.find((x) => x.id === 'kernel.userns')!.ok === false);
  // a check that did not print its record counts as failed
  t.false(parseCheckOutput(CHECKS.slice(0, 1), '', 'M')[0]!.ok);
  t.notRegex(checksScript(CHECKS, 'M'), /\bset -e\b/);
});

test('a failed pre-flight is a failed host in vzsb deploy, before any task ran', async (t) => {
  const dir = tmp('vzsb-preflight-');
  writeFileSync(join(dir, 'inventory.yaml'), `all:\n  hosts:\n    h1:\n      ansible_connection: local\n`);
  writeFileSync(
    join(dir, 'pb.yaml'),
    `- hosts: all\n  tasks:\n    - name: pre-flight\n      preflight: { role: hypervisor }\n    - name: a change\n      command: "touch ${dir}/changed"\n`,
  );
  const saved = process.env.VZSB_PROC;
  process.env.VZSB_PROC = join(dir, 'no-proc');
  try {
    const r = collectingReporter();
    const result = await deploy({ inventory: join(dir, 'inventory.yaml'), playbook: join(dir, 'pb.yaml'), reporter: r.reporter });
    t.is(result.exitCode, 2);
    t.is(result.hosts[0]!.failed, 1);
    t.regex(result.hosts[0]!.error ?? '', /h1: task "pre-flight" .*pre-flight failed, nothing was changed: kernel\.userns .*fix: sysctl user\.max_user_namespaces/);
    t.is(result.hosts[0]!.stats.roundTrips, 1, 'the checks come with the facts: one round trip, no apply');
    const { existsSync } = await import('node:fs');
    t.false(existsSync(join(dir, 'changed')));
  } finally {
    if (saved === undefined) delete process.env.VZSB_PROC;
    else process.env.VZSB_PROC = saved;
  }
});

test('vzsb lab up stops at the pre-flight with exit 1, naming the package, before anything is made', async (t) => {
  const root = tmp('vzsb-lab-root-');
  const roots = { ...healthyRoots(), lxcConfigDir: tmp('vzsb-doctor-lxc-') };
  const err = await t.throwsAsync(createLab({ name: 'preflight-test', hosts: 2 }, { root, preflight: roots }));
  t.is((err as { code?: string }).code, 'E_PREFLIGHT');
  t.regex(err!.message, /^lab preflight-test: pre-flight failed, nothing was changed:\n[\s\S]*  files\.lxc_config: .*fix: apt-get install --no-install-recommends liblxc-common/);
  const { readdirSync } = await import('node:fs');
  t.deepEqual(readdirSync(root), [], 'no state dir, no subnet reservation');
});
