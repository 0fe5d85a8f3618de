import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AdminClient } from '../../src/admin/client.js';
import { resolveAdminTarget } from '../../src/admin/config.js';
import { poolsReset, poolsStatus } from '../../src/cli/commands/pools.js';
import { listSessions } from '../../src/cli/commands/sessions.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { BALANCER_TOKENS, balancerConfigYaml, httpCall, startCluster, startTestHypervisor, userHomedAt } from '../helpers/daemons.js';
import { runCli } from '../hypervisor/daemon-process.js';

const KEY = generateEd25519('gateway').publicKey;

// Child processes inherit these: no instructor config of this machine's user leaks in.
const home = mkdtempSync(join(tmpdir(), 'vzsb-cli-home-'));
process.env.HOME = home;
process.env.XDG_CONFIG_HOME = join(home, '.config');
delete process.env.VZSB_BALANCER;
delete process.env.VZSB_ADMIN_TOKEN;
test.after.always(() => rm(home, { recursive: true, force: true }));

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * A balancer that is down: a privileged loopback port nothing listens on, and not one of
 * fetch's blocked ports. A port freed by the test itself could be handed to another test's
 * daemon before it is used, a minute later.
 */
const DEAD_BALANCER = 'http://127.0.0.1:1023';

test('the balancer daemon process, and vzsb pools status / reset / sessions against it, as a person and a script would run them', async (t) => {
  const dir = await tempDir(t);
  const hyps = await Promise.all([startTestHypervisor(t, { name: 'clia', standby: 2, max: 4 }), startTestHypervisor(t, { name: 'clib', standby: 1, max: 2 })]);
  await writeFile(join(dir, 'clib.token'), `${hyps[1]!.token}\n`, { mode: 0o600 });
  const config = join(dir, 'balancer.yaml');
  // clib's token comes from a file, as in production.
  const configText = balancerConfigYaml(hyps).replace(`token: ${hyps[1]!.token}}`, `tokenFile: ${join(dir, 'clib.token')}}`);
  t.true(configText.includes('tokenFile'));
  await writeFile(config, configText);
  const check = runCli(['balancer', '--check', '--config', config]);
  t.is(await check.exited, 0);
  t.regex(check.stdout.join(''), /ok \(2 hypervisor\(s\): clia, clib\)/);

  const daemon = runCli(['balancer', '--config', config]);
  t.teardown(() => {
    daemon.child.kill('SIGKILL');
  });
  const listening = await daemon.waitForLog('daemon.listening');
  const url = `http://127.0.0.1:${listening.port}`;
  const started = await daemon.waitForLog('balancer.started');
  t.deepEqual(started.hypervisors, [{ name: 'clia', up: true }, { name: 'clib', up: true }]);
  const alice = userHomedAt(['clia', 'clib'], 'clia', 'alice');
  const lease = await httpCall(url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user: alice, publicKey: KEY } });
  t.is(lease.status, 200, lease.text);
  t.is(lease.body.hypervisor, 'clia');

  const tokenFile = join(dir, 'admin.token');
  await writeFile(tokenFile, `${BALANCER_TOKENS.admin}\n`, { mode: 0o600 });

  // --json through the second balancer (the first is down), token from the environment.
  process.env.VZSB_ADMIN_TOKEN = BALANCER_TOKENS.admin;
  const json = runCli(['pools', 'status', '--json', '--balancer', DEAD_BALANCER, '--balancer', url]);
  delete process.env.VZSB_ADMIN_TOKEN;
  t.is(await json.exited, 0, JSON.stringify(json.logs));
  const report = JSON.parse(json.stdout.join(''));
  t.like(report, { up: 2, down: 0, totals: { clean: 3, leased: 1, max: 6 } });
  t.deepEqual(report.hypervisors.map((h: { name: string; up: boolean }) => [h.name, h.up]), [['clia', true], ['clib', true]]);

  // The table, with one hypervisor gone.
  await hyps[1]!.stop();
  const table = runCli(['pools', 'status', '--balancer', url, '--token-file', tokenFile]);
  t.is(await table.exited, 0);
  const text = table.stdout.join('');
  const lines = text.split('\n');
  t.regex(lines[0]!, /^HYPERVISOR\s+STATUS\s+CLEAN\s+LEASED\s+BUILDING\s+DIRTY\s+BROKEN\s+MAX\s+STANDBY\s+LAST SEEN$/);
  t.regex(text, /\nclia\s+up\s+2\s+1\s+0\s+0\s+0\s+4\s+2\s+\d\d:\d\d:\d\d\n/);
  t.regex(text, /\nclib\s+DOWN\s+-\s+-\s+-\s+-\s+-\s+-\s+-\s+\d\d:\d\d:\d\d\n/);
  t.regex(text, /\ntotal\s+1\/2 up\s+2\s+1\s+0\s+0\s+0\s+4\s+2\n/);
  t.regex(text, /clib: clib: cannot reach .* \(E_HYPERVISOR_UNREACHABLE\)/);

  const sessions = runCli(['sessions', '--balancer', url, '--token-file', tokenFile]);
  t.is(await sessions.exited, 2, 'clib could not be asked');
  t.regex(sessions.stdout.join(''), new RegExp(String.raw`^USER\s+HYPERVISOR\s+CONTAINER\s+ADDRESS\s+SINCE\s+IDLE\s+STATE\n[- ]+\n${alice}\s+clia\s+clia-\d{4}\s+\S+\s+\d\d:\d\d:\d\d\s+\S+\s+waiting\n`, 'm'));
  t.regex(sessions.stdout.join(''), /clib: not asked/);

  // Reset everything: clib is down, so the exit status says a part failed, and both rows are printed.
  const reset = runCli(['pools', 'reset', '--all', '--balancer', url, '--token-file', tokenFile]);
  t.is(await reset.exited, 2);
  const resetText = reset.stdout.join('');
  t.regex(resetText, /\nclia\s+done\s+reset 3\n/);
  t.regex(resetText, /\nclib\s+failed\s+E_HYPERVISOR_UNREACHABLE: clib: cannot reach/);

  const resetOne = runCli(['pools', 'reset', '--hypervisor', 'clia', '--json', '--balancer', url, '--token-file', tokenFile]);
  t.is(await resetOne.exited, 0);
  t.like(JSON.parse(resetOne.stdout.join('')), { ok: true, results: [{ hypervisor: 'clia', status: 'done' }] });

  // SIGTERM: a clean stop.
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
  t.truthy(daemon.logs.find((l) => l.event === 'daemon.stopped'));
  // Every balancer down now: exit 3 with each one named.
  const unreachable = runCli(['pools', 'status', '--balancer', `${DEAD_BALANCER},${url}`, '--token-file', tokenFile]);
  t.is(await unreachable.exited, 3);
  const err = unreachable.logs.map((l) => l.text).join('\n');
  t.regex(err, /no balancer answered: http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED .*; http:\/\/127\.0\.0\.1:\d+: connect ECONNREFUSED/);
});

test('usage: a token on the command line is refused, exactly one reset target, a bad token is named as such', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'clic', standby: 1, max: 2 }] });
  const withToken = runCli(['pools', 'status', '--balancer', c.balancer.url, '--token', BALANCER_TOKENS.admin]);
  t.is(await withToken.exited, 1);
  t.regex(withToken.logs.map((l) => l.text).join('\n'), /--token is not accepted: a token on the command line shows in `ps`/);
  const twoTargets = runCli(['pools', 'reset', '--all', '--user', 'alice', '--balancer', c.balancer.url]);
  t.is(await twoTargets.exited, 1);
  t.regex(twoTargets.logs.map((l) => l.text).join('\n'), /exactly one of --all, --hypervisor H, --user U \(got --all and --user\)/);
  const noTarget = runCli(['pools', 'reset', '--balancer', c.balancer.url]);
  t.is(await noTarget.exited, 1);
  const help = runCli(['pools', 'reset', '--help']);
  t.is(await help.exited, 0);
  t.regex(help.stdout.join(''), /pools reset --user alice --force/);

  const dir = await tempDir(t);
  const wrong = join(dir, 'wrong.token');
  await writeFile(wrong, BALANCER_TOKENS.lease, { mode: 0o600 });
  const forbidden = runCli(['sessions', '--balancer', c.balancer.url, '--token-file', wrong]);
  t.is(await forbidden.exited, 3);
  t.regex(forbidden.logs.map((l) => l.text).join('\n'), /does not grant the "admin" scope/);
  const noToken = runCli(['sessions', '--balancer', c.balancer.url]);
  t.is(await noToken.exited, 1);
  t.regex(noToken.logs.map((l) => l.text).join('\n'), /no admin token given: pass --token-file FILE, set VZSB_ADMIN_TOKEN/);
});

test('admin target resolution: flags, then environment, then the first admin.yaml; token files must not be world-readable', async (t) => {
  const dir = await tempDir(t);
  const user = join(dir, 'user-admin.yaml');
  const system = join(dir, 'etc-admin.yaml');
  const tokenFile = join(dir, 'admin.token');
  await writeFile(tokenFile, 'file-token-0123456789abcdef\n', { mode: 0o600 });
  await writeFile(system, `balancers: [http://lb1:8760, "http://lb2:8760/"]\ntokenFile: ${tokenFile}\ntimeoutMs: 5000\n`);
  const configFiles = [user, system];

  const fromFile = await resolveAdminTarget({}, { env: {}, configFiles });
  t.deepEqual(fromFile.balancers, ['http://lb1:8760', 'http://lb2:8760']);
  t.is(fromFile.token, 'file-token-0123456789abcdef');
  t.is(fromFile.timeoutMs, 5000);
  t.deepEqual(fromFile.from, { balancers: system, token: tokenFile });

  const fromEnv = await resolveAdminTarget({}, { env: { VZSB_BALANCER: 'http://a:1, http://b:2', VZSB_ADMIN_TOKEN: 'env-token-0123456789abcdef' }, configFiles });
  t.deepEqual(fromEnv.balancers, ['http://a:1', 'http://b:2']);
  t.is(fromEnv.token, 'env-token-0123456789abcdef');

  const fromFlags = await resolveAdminTarget({ balancer: ['http://c:3'], tokenFile, timeout: 2 }, { env: { VZSB_BALANCER: 'http://a:1', VZSB_ADMIN_TOKEN: 'env-token-0123456789abcdef' }, configFiles });
  t.deepEqual(fromFlags.balancers, ['http://c:3']);
  t.is(fromFlags.token, 'file-token-0123456789abcdef');
  t.is(fromFlags.timeoutMs, 2000);

  // The user's file wins over the system one, and a token written in it needs a private file.
  await writeFile(user, 'balancers: http://mine:8760\ntoken: user-token-0123456789abcdef\n');
  await chmod(user, 0o644);
  await t.throwsAsync(resolveAdminTarget({}, { env: {}, configFiles }), { message: new RegExp(`${user} holds a token is readable by every user \\(mode 644\\); chmod o-r`) });
  await chmod(user, 0o600);
  t.like(await resolveAdminTarget({}, { env: {}, configFiles }), { balancers: ['http://mine:8760'], token: 'user-token-0123456789abcdef' });

  await chmod(tokenFile, 0o604);
  await t.throwsAsync(resolveAdminTarget({ balancer: ['http://c:3'], tokenFile }, { env: {}, configFiles: [] }), { message: /--token-file: .* is readable by every user/ });
  await writeFile(user, 'balancers: [ftp://x]\n');
  await t.throwsAsync(resolveAdminTarget({}, { env: {}, configFiles }), { message: new RegExp(`${user}: balancers\\[0\\]: expected an http`) });
  await t.throwsAsync(resolveAdminTarget({ balancer: ['lb1:8760'] }, { env: {}, configFiles: [] }), { message: /--balancer\[0\]: .*expected an http/ });
  await t.throwsAsync(resolveAdminTarget({}, { env: { VZSB_BALANCER: 'http://a:1', VZSB_ADMIN_TOKEN: 'short' }, configFiles: [] }), { message: /VZSB_ADMIN_TOKEN: .*at least 16/ });
  await t.throwsAsync(resolveAdminTarget({}, { env: {}, configFiles: [] }), { message: /no balancer given/ });
});

test('the command bodies in-process: status, reset of one user, sessions', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'clid', standby: 1, max: 3 }, { name: 'clie', standby: 2, max: 3 }] });
  const bob = userHomedAt(['clid', 'clie'], 'clie', 'bob');
  const lease = await httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user: bob, publicKey: KEY } });
  t.is(lease.body.hypervisor, 'clie');
  const client = new AdminClient({ balancers: [c.balancer.url], token: c.tokens.admin, timeoutMs: 5000 });
  let out = '';
  const write = (s: string) => (out += s);
  t.is(await poolsStatus(client, false, write), 0);
  t.regex(out, /\nclie\s+up\s+\d+\s+1\s/);
  out = '';
  t.is(await listSessions(client, false, write), 0);
  t.regex(out, new RegExp(String.raw`\n${bob}\s+clie\s+clie-\d{4}\s`));
  // bob is logged in: not without --force.
  (c.hypervisor('clie').driver as MemoryDriver).setSessions(lease.body.container, 1);
  out = '';
  t.is(await poolsReset(client, { user: bob }, { force: false, wait: true }, false, write), 2);
  t.regex(out, new RegExp(String.raw`\nclie\s+failed\s+E_IN_USE: clie: container clie-\d{4} is in use by ${bob} .*pass force`));
  const raw = await httpCall(c.balancer.url, 'POST', `/v1/users/${bob}/reset`, { token: c.tokens.admin, body: {} });
  t.is(raw.status, 409);
  t.is(raw.body.error.code, 'E_IN_USE');
  out = '';
  t.is(await poolsReset(client, { user: bob }, { force: true, wait: true }, false, write), 0);
  t.regex(out, /\nclid\s+no-lease\s+no lease for this user here\n/);
  t.regex(out, /\nclie\s+done\s+reset 1\n/);
  out = '';
  t.is(await poolsReset(client, { user: bob }, { force: false, wait: false }, false, write), 2, 'no lease anywhere now');
  t.regex(out, new RegExp(`user ${bob} holds no lease on any hypervisor \\(E_NO_LEASE\\)`));
  await t.throwsAsync(poolsReset(client, { hypervisor: 'nope' }, { force: false, wait: false }, false, write), { message: /no hypervisor named nope/ });
});
