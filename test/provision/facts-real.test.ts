import test from 'ava';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type CommandResult } from '../../src/common/exec.js';
import { FactStore } from '../../src/provision/fact-store.js';
import { factModules } from '../../src/provision/facts/index.js';
import { NFT, type NftablesState } from '../../src/provision/facts/nftables.js';
import type { PackageState } from '../../src/provision/facts/packages.js';
import { FALLBACK, type ServiceState } from '../../src/provision/facts/service.js';
import type { GroupState, UserState } from '../../src/provision/facts/users.js';
import { operations } from '../../src/provision/operations/index.js';
import { serviceHelperScript } from '../../src/provision/operations/service-helper.js';
import { factKey, type Command, type FactRef, type OsFacts, type Plan } from '../../src/provision/types.js';
import { parseInput } from '../../src/common/validate.js';

// The fact snippets run for real on this machine (Debian 12, PID 1 not systemd), concatenated
// into one script as the runner sends them, and the plans of some operations are executed for
// real and planned again: a second plan must be empty.

const UNIQUE = `vzsbft${process.pid}`;
const NETNS = `vzsbft${process.pid}`;

/** Runs every snippet in one sh, split by marker lines; fails on a non-zero exit. */
async function gather(refs: FactRef[], wrap: string[] = [], via: 'arg' | 'stdin' = 'arg'): Promise<Map<string, unknown>> {
  const marker = `--vzsb-fact-${process.pid}--`;
  const script = refs.map((r, i) => `echo; echo '${marker}${i}'\n${factModules.get(r.fact)!.command(r.arg)}`).join('\n') + `\necho; echo '${marker}end'`;
  const [file, ...pre] = [...wrap, 'sh'];
  const result = via === 'arg' ? await run(file!, [...pre, '-c', script]) : await run(file!, [...pre, '-s'], { input: script });
  if (result.exitCode !== 0) throw new Error(`fact script exited ${result.exitCode}: ${result.stderr}`);
  const values = new Map<string, unknown>();
  const parts = result.stdout.split(new RegExp(`\\n${marker}(\\d+|end)\\n`));
  // parts: [before, idx0, out0, idx1, out1, ..., 'end', rest]
  for (let i = 1; i + 1 < parts.length; i += 2) {
    if (parts[i] === 'end') break;
    const ref = refs[Number(parts[i])]!;
    values.set(factKey(ref), factModules.get(ref.fact)!.parse(parts[i + 1]!, ref.arg));
  }
  t_assertAll(refs, values);
  return values;
}

function t_assertAll(refs: FactRef[], values: Map<string, unknown>): void {
  for (const r of refs) if (!values.has(factKey(r))) throw new Error(`fact ${factKey(r)} missing from the output`);
}

async function hostOs(wrap: string[] = []): Promise<OsFacts> {
  return (await gather([{ fact: 'os', arg: '' }], wrap)).get('os:') as OsFacts;
}

/** Plans one task against real facts. */
async function planTask(op: string, rawArgs: Record<string, unknown>, wrap: string[] = []): Promise<Plan> {
  const operation = operations.get(op)!;
  const args = parseInput(operation.args, rawArgs, `task ${op}`);
  const refs = operation.facts(args, { diff: false });
  const store = new FactStore(await hostOs(wrap));
  for (const [key, value] of await gather(refs, wrap)) {
    const i = key.indexOf(':');
    store.set({ fact: key.slice(0, i), arg: key.slice(i + 1) }, value);
  }
  return operation.plan(args, { facts: store, vars: {}, check: false, wantDiff: false });
}

/** Executes a plan as the runner does: shell under sh -e, put atomically. Stops at the first failure. */
async function execute(commands: Command[], wrap: string[] = []): Promise<CommandResult | undefined> {
  for (const c of commands) {
    if (c.kind === 'put') {
      const tmp = `${c.path}.put-${process.pid}`;
      await writeFile(tmp, c.content);
      if (c.mode) await chmod(tmp, parseInt(c.mode, 8));
      if (c.owner || c.group) {
        const r = await run('chown', [`${c.owner ?? ''}:${c.group ?? ''}`, tmp]);
        if (r.failed) return r;
      }
      await rename(tmp, c.path);
    } else {
      const [file, ...pre] = [...wrap, 'sh'];
      const r = await run(file!, [...pre, '-e', '-c', c.script]);
      if (r.failed) return r;
    }
  }
  return undefined;
}

async function applyAndReplan(t: import('ava').ExecutionContext, op: string, args: Record<string, unknown>, wrap: string[] = []): Promise<Plan> {
  const first = await planTask(op, args, wrap);
  t.true(first.commands.length > 0, `${op}: first plan should change something (${first.reason})`);
  const failed = await execute(first.commands, wrap);
  t.is(failed, undefined, failed ? `${failed.command}: ${failed.stderr}` : '');
  const second = await planTask(op, args, wrap);
  t.deepEqual(second.commands, [], `${op}: second plan should be empty, got ${second.reason}`);
  return second;
}

let dir = '';
test.before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'vzsb-facts-'));
  const r = await run('ip', ['netns', 'add', NETNS]);
  if (r.failed) throw new Error(`ip netns add: ${r.stderr}`);
});
test.after.always(async () => {
  await run('ip', ['netns', 'del', NETNS]);
  if (dir) await rm(dir, { recursive: true, force: true });
});
const inNetns = () => ['ip', 'netns', 'exec', NETNS];

test('os: this machine is Debian with apt and without systemd as PID 1', async (t) => {
  const os = await hostOs();
  t.is(os.family, 'debian');
  t.is(os.packageManager, 'apt');
  t.is(os.initSystem, 'other');
  t.is(os.user, 'root');
});

test('packages: coreutils installed with its dpkg version, a missing package not', async (t) => {
  const dpkg = await run('dpkg-query', ['-W', '-f=${Version}', 'coreutils']);
  const facts = await gather([
    { fact: 'packages', arg: 'coreutils vzsb-no-such-package' },
    { fact: 'package_candidates', arg: 'coreutils vzsb-no-such-package' },
    { fact: 'package_cache_age', arg: '' },
  ]);
  t.deepEqual(facts.get('packages:coreutils vzsb-no-such-package'), {
    coreutils: { installed: true, version: dpkg.stdout.trim() },
    'vzsb-no-such-package': { installed: false, version: null },
  } satisfies Record<string, PackageState>);
  const candidates = facts.get('package_candidates:coreutils vzsb-no-such-package') as Record<string, string | null>;
  t.regex(candidates.coreutils ?? '', /^\d/);
  t.is(candidates['vzsb-no-such-package'], null);
  const age = facts.get('package_cache_age:') as number | null;
  t.true(age === null || age >= 0);
  // Installed at its candidate or not: the plan for coreutils present is empty either way.
  t.deepEqual((await planTask('package', { name: 'coreutils' })).commands, []);
});

test('users and groups: root exists, a made-up name does not', async (t) => {
  const facts = await gather([
    { fact: 'user', arg: 'root' },
    { fact: 'user', arg: UNIQUE },
    { fact: 'group', arg: 'root' },
    { fact: 'group', arg: UNIQUE },
  ]);
  const root = facts.get('user:root') as UserState;
  t.like(root, { exists: true, uid: 0, gid: 0, group: 'root', home: '/root' });
  t.deepEqual(facts.get(`user:${UNIQUE}`), { exists: false });
  t.like(facts.get('group:root') as GroupState, { exists: true, gid: 0 });
  t.deepEqual(facts.get(`group:${UNIQUE}`), { exists: false });
});

test('the same snippets read from stdin give the same facts (no snippet eats the script)', async (t) => {
  const refs: FactRef[] = [
    { fact: 'packages', arg: 'coreutils' },
    { fact: 'user', arg: 'root' },
    { fact: 'sysctl', arg: 'kernel.ostype' },
    { fact: 'service', arg: `${UNIQUE}-none` },
    { fact: 'nftables', arg: '' },
    { fact: 'group', arg: 'root' },
  ];
  t.deepEqual(await gather(refs, [], 'stdin'), await gather(refs));
});

test('group and user: created, changed, removed for real; a second plan is empty', async (t) => {
  t.teardown(async () => {
    await run('userdel', ['-r', UNIQUE]);
    await run('groupdel', [`${UNIQUE}g`]);
  });
  await applyAndReplan(t, 'group', { name: `${UNIQUE}g`, system: true });
  await applyAndReplan(t, 'user', { name: UNIQUE, groups: [`${UNIQUE}g`], shell: '/bin/sh', home: join(dir, 'home'), password_lock: true });
  const after = (await gather([{ fact: 'user', arg: UNIQUE }])).get(`user:${UNIQUE}`) as UserState;
  t.like(after, { exists: true, group: UNIQUE, groups: [`${UNIQUE}g`], shell: '/bin/sh', home: join(dir, 'home'), locked: true });
  await applyAndReplan(t, 'user', { name: UNIQUE, groups: ['users'], append: true });
  t.like((await gather([{ fact: 'user', arg: UNIQUE }])).get(`user:${UNIQUE}`) as UserState, { groups: [`${UNIQUE}g`, 'users'].sort() });
  await applyAndReplan(t, 'user', { name: UNIQUE, state: 'absent', remove: true });
  await applyAndReplan(t, 'group', { name: `${UNIQUE}g`, state: 'absent' });
});

test('lineinfile and cron: file edits applied for real; a second plan is empty', async (t) => {
  const shells = join(dir, 'shells');
  await writeFile(shells, '# valid login shells\n/bin/sh\n/bin/bash');
  await applyAndReplan(t, 'lineinfile', { path: shells, line: '/usr/local/bin/vzsb-shell' });
  t.is(await readFile(shells, 'utf8'), '# valid login shells\n/bin/sh\n/bin/bash\n/usr/local/bin/vzsb-shell\n');
  await applyAndReplan(t, 'lineinfile', { path: shells, regexp: '^/bin/', state: 'absent' });
  t.is(await readFile(shells, 'utf8'), '# valid login shells\n/usr/local/bin/vzsb-shell\n');
  const created = join(dir, 'new.conf');
  await applyAndReplan(t, 'lineinfile', { path: created, line: 'a=1', create: true, mode: '0600' });
  t.is((await stat(created)).mode & 0o777, 0o600);

  // cron writes into /etc/cron.d: a file of this test's own, removed by state=absent at the end.
  const cronFile = `/etc/cron.d/${UNIQUE}`;
  t.teardown(() => rm(cronFile, { force: true }));
  await applyAndReplan(t, 'cron', { name: 'reclaim', cron_file: UNIQUE, user: 'root', minute: '*/15', job: '/bin/true' });
  await applyAndReplan(t, 'cron', { name: 'boot', cron_file: UNIQUE, special_time: 'reboot', job: '/bin/true boot' });
  t.is(await readFile(cronFile, 'utf8'), '#Ansible: reclaim\n*/15 * * * * root /bin/true\n#Ansible: boot\n@reboot root /bin/true boot\n');
  t.is((await stat(cronFile)).mode & 0o777, 0o644);
  await applyAndReplan(t, 'cron', { name: 'reclaim', cron_file: UNIQUE, state: 'absent' });
  await applyAndReplan(t, 'cron', { name: 'boot', cron_file: UNIQUE, state: 'absent' });
  t.false(existsSync(cronFile));
});

test('sysctl: live value and file, in a network namespace of this test', async (t) => {
  const facts = await gather([
    { fact: 'sysctl', arg: 'kernel.ostype' },
    { fact: 'sysctl', arg: 'vzsb.no.such.key' },
  ]);
  t.is(facts.get('sysctl:kernel.ostype'), 'Linux');
  t.is(facts.get('sysctl:vzsb.no.such.key'), null);
  const file = join(dir, '99-vzsandbox.conf');
  const live = async () => (await gather([{ fact: 'sysctl', arg: 'net.ipv4.ip_forward' }], inNetns())).get('sysctl:net.ipv4.ip_forward');
  t.is(await live(), '0');
  await applyAndReplan(t, 'sysctl', { name: 'net.ipv4.ip_forward', value: 1, sysctl_file: file }, inNetns());
  t.is(await live(), '1');
  t.is(await readFile(file, 'utf8'), 'net.ipv4.ip_forward=1\n');
});

test('nftables: checked, applied atomically, idempotent; a bad ruleset keeps file and rules', async (t) => {
  const dest = join(dir, 'nft', 'vzsandbox.nft');
  const table = `inet ${UNIQUE}`;
  const ruleset = (rule: string) => `table ${table}\ndelete table ${table}\ntable ${table} {\n  chain input {\n    type filter hook input priority 0; policy accept;\n    ${rule}\n  }\n}\n`;
  const nft = async () => (await gather([{ fact: 'nftables', arg: '' }], inNetns())).get('nftables:') as NftablesState;
  t.deepEqual(await nft(), { installed: true, tables: [] });

  await applyAndReplan(t, 'nftables', { content: ruleset('tcp dport 1 drop'), dest }, inNetns());
  t.deepEqual((await nft()).tables, [table]);
  // Applying again with another rule replaces, not appends.
  await applyAndReplan(t, 'nftables', { content: ruleset('tcp dport 2 drop'), dest }, inNetns());
  const listed = await run('ip', ['netns', 'exec', NETNS, NFT, 'list', 'table', 'inet', UNIQUE]);
  t.regex(listed.stdout, /dport 2 drop/);
  t.notRegex(listed.stdout, /dport 1 drop/);

  // The live tables gone (as after a reboot): the unchanged file is applied again.
  await run('ip', ['netns', 'exec', NETNS, NFT, 'delete', 'table', 'inet', UNIQUE]);
  const reapply = await planTask('nftables', { content: ruleset('tcp dport 2 drop'), dest }, inNetns());
  t.regex(reapply.reason, /live ruleset lacks/);
  t.is(await execute(reapply.commands, inNetns()), undefined);
  t.deepEqual((await nft()).tables, [table]);

  // A ruleset nft rejects: the task fails with nft's message, file and live rules stay.
  const bad = await planTask('nftables', { content: ruleset('tcp dport nonsense-port drop'), dest }, inNetns());
  const failed = await execute(bad.commands, inNetns());
  t.truthy(failed);
  t.regex(failed?.stderr ?? '', /Error/);
  t.is(await readFile(dest, 'utf8'), ruleset('tcp dport 2 drop'));
  t.false(existsSync(`${dest}.vzsb-new`));
  t.regex((await run('ip', ['netns', 'exec', NETNS, NFT, 'list', 'table', 'inet', UNIQUE])).stdout, /dport 2 drop/);
});

/** No such process, or a zombie its parent has not reaped yet (a slow PID 1 in containers). */
async function gone(pid: number): Promise<boolean> {
  return readFile(`/proc/${pid}/stat`, 'utf8').then((s) => /^[ZX]/.test(s.replace(/^.*\) /s, '')), () => true);
}

/** Polls a condition (a file appearing, a process going away) until it holds; no fixed sleeps. */
async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setImmediate(r));
  }
}

test('service.sh fallback: start, status, restart gives a new pid, stop, enable, boot', async (t) => {
  // Unit and pidfile at the real places (the service fact reads those), under this test's own
  // name; logs, markers and the cron file in the temp dir.
  const name = UNIQUE;
  const unitFile = `/etc/systemd/system/${name}.service`;
  const helper = join(dir, 'service.sh');
  const logDir = join(dir, 'log');
  const env = { ...process.env, VZSB_LOG_DIR: logDir, VZSB_ENABLED_DIR: join(dir, 'enabled'), VZSB_CRON_FILE: join(dir, 'cron.d', 'vzsb-services') };
  const svc = (...args: string[]) => run('sh', [helper, ...args], { env });
  const pidOf = async () => Number((await readFile(join(FALLBACK.runDir, `${name}.pid`), 'utf8').catch(() => '')).trim()) || null;
  const fact = async () => (await gather([{ fact: 'service', arg: name }])).get(`service:${name}`) as ServiceState;
  t.teardown(async () => {
    await svc('stop', name);
    await rm(unitFile, { force: true });
    await rm(join(FALLBACK.runDir, `${name}.pid`), { force: true });
  });
  await writeFile(helper, serviceHelperScript, { mode: 0o755 });
  await mkdir('/etc/systemd/system', { recursive: true });
  await writeFile(
    unitFile,
    [
      '[Unit]',
      'Description=fallback test daemon',
      '[Service]',
      'Type=simple',
      'User=nobody',
      `WorkingDirectory=${dir}`,
      'Environment="GREETING=hello there" OTHER=1',
      `EnvironmentFile=-${join(dir, 'missing.env')}`,
      `ExecStart=/bin/sh -c 'echo "$GREETING from $(pwd) as $(id -un)"; exec sleep 3600'`,
      '[Install]',
      'WantedBy=multi-user.target',
      '',
    ].join('\n'),
  );

  t.like(await fact(), { manager: 'fallback', unit: true, active: false, enabled: 'disabled', pid: null });
  const status0 = await svc('status', name);
  t.is(status0.exitCode, 3);

  const started = await svc('start', name);
  t.is(started.exitCode, 0, started.stderr);
  const pid1 = await pidOf();
  t.truthy(pid1);
  t.true(existsSync(`/proc/${pid1}`));
  t.is((await svc('status', name)).stdout.trim(), `running ${pid1}`);
  t.like(await fact(), { active: true, pid: pid1 });
  const log = join(logDir, `${name}.log`);
  await waitFor('the daemon to write its log', async () => (await readFile(log, 'utf8').catch(() => '')).includes('\n'));
  t.is((await readFile(log, 'utf8')).trim(), `hello there from ${dir} as nobody`);
  t.is((await svc('start', name)).exitCode, 0, 'start of a running service is fine');
  t.is(await pidOf(), pid1);

  const restarted = await svc('restart', name);
  t.is(restarted.exitCode, 0, restarted.stderr);
  const pid2 = await pidOf();
  t.truthy(pid2);
  t.not(pid2, pid1);
  t.true(await gone(pid1!), 'the old process is gone');

  const stopped = await svc('stop', name);
  t.is(stopped.exitCode, 0, stopped.stderr);
  t.true(await gone(pid2!), 'the process is gone when stop returns');
  t.is((await svc('status', name)).exitCode, 3);
  t.like(await fact(), { active: false, pid: null });
  t.is((await svc('stop', name)).exitCode, 0, 'stop of a stopped service is fine');

  t.is((await svc('enable', name)).exitCode, 0);
  t.is((await svc('is-enabled', name)).stdout.trim(), 'enabled');
  t.is(await readFile(env.VZSB_CRON_FILE, 'utf8'), `@reboot root ${helper} boot >/dev/null 2>&1\n`);
  const booted = await svc('boot');
  t.is(booted.exitCode, 0, booted.stderr);
  const pid3 = await pidOf();
  t.truthy(pid3);
  t.true(existsSync(`/proc/${pid3}`));
  t.is((await svc('disable', name)).exitCode, 0);
  t.is((await svc('is-enabled', name)).exitCode, 1);

  const missing = await svc('start', `${name}-missing`);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, /no unit file/);
});

test('service operation on this host (no systemd): helper put, started and enabled, restarted, stopped', async (t) => {
  const name = `${UNIQUE}op`;
  const unitFile = `/etc/systemd/system/${name}.service`;
  const marker = `${FALLBACK.enabledDir}/${name}`;
  const hadHelper = existsSync(FALLBACK.helper);
  const hadCron = existsSync(FALLBACK.cronFile);
  const pidOf = async () => Number((await readFile(join(FALLBACK.runDir, `${name}.pid`), 'utf8').catch(() => '')).trim()) || null;
  t.teardown(async () => {
    await run(FALLBACK.helper, ['stop', name]);
    await rm(unitFile, { force: true });
    await rm(marker, { force: true });
    if (!hadCron) await rm(FALLBACK.cronFile, { force: true });
    if (!hadHelper) await rm(FALLBACK.helper, { force: true });
  });
  await writeFile(unitFile, '[Service]\nExecStart=/bin/sleep 3600\n');

  await applyAndReplan(t, 'service', { name, state: 'started', enabled: true });
  const pid1 = await pidOf();
  t.truthy(pid1);
  t.true(existsSync(`/proc/${pid1}`));
  t.true(existsSync(marker));
  t.is(await readFile(FALLBACK.helper, 'utf8'), serviceHelperScript);

  const restart = await planTask('service', { name, state: 'restarted' });
  t.deepEqual(restart.commands, [{ kind: 'shell', script: `${FALLBACK.helper} restart ${name}` }]);
  t.is(await execute(restart.commands), undefined);
  const pid2 = await pidOf();
  t.truthy(pid2);
  t.not(pid2, pid1);

  await applyAndReplan(t, 'service', { name, state: 'stopped', enabled: false });
  t.is(await pidOf(), null);
  t.false(existsSync(marker));
});

test('service.sh fallback: a daemon that ignores SIGTERM is killed after VZSB_STOP_TIMEOUT', async (t) => {
  const base = join(dir, 'stubborn');
  const env = { ...process.env, VZSB_UNIT_DIRS: join(base, 'units'), VZSB_RUN_DIR: join(base, 'run'), VZSB_LOG_DIR: join(base, 'log'), VZSB_STOP_TIMEOUT: '1' };
  await mkdir(env.VZSB_UNIT_DIRS, { recursive: true });
  await writeFile(join(env.VZSB_UNIT_DIRS, 'stubborn.service'), '[Service]\nExecStart=/bin/sh -c "trap \\"\\" TERM; exec sleep 3600"\n');
  const helper = join(base, 'service.sh');
  await writeFile(helper, serviceHelperScript);
  const svc = (...args: string[]) => run('sh', [helper, ...args], { env });
  t.teardown(async () => {
    const pid = Number(await readFile(join(env.VZSB_RUN_DIR, 'stubborn.pid'), 'utf8').catch(() => '0'));
    if (pid && !(await gone(pid))) process.kill(pid, 'SIGKILL');
  });
  const started = await svc('start', 'stubborn');
  t.is(started.exitCode, 0, started.stderr);
  const pid = Number(await readFile(join(env.VZSB_RUN_DIR, 'stubborn.pid'), 'utf8'));
  const stopped = await svc('stop', 'stubborn');
  t.is(stopped.exitCode, 0, stopped.stderr);
  t.true(stopped.durationMs >= 900, `stop took ${Math.round(stopped.durationMs)} ms: SIGTERM was ignored, SIGKILL comes after 1 s`);
  t.true(await gone(pid));
  t.is((await svc('status', 'stubborn')).exitCode, 3);
});
