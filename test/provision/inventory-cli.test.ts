import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/common/exec.js';
import { main } from '../../src/cli/main.js';
import { loadInventory } from '../../src/provision/inventory/index.js';

const mainModule = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/inventory/${name}`, import.meta.url));

/**
 * `vzsb ...` through the CLI entry's main(), in this process, with its stdout and stderr
 * captured (the tests in this file run serially for that). One test below runs it as a real
 * process too.
 */
async function vzsb(...args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  const out: string[] = [];
  const err: string[] = [];
  const write = { out: process.stdout.write, err: process.stderr.write };
  process.stdout.write = ((chunk: string | Uint8Array) => out.push(String(chunk)) > 0) as typeof process.stdout.write;
  process.stderr.write = ((chunk: string | Uint8Array) => err.push(String(chunk)) > 0) as typeof process.stderr.write;
  try {
    const exitCode = await main(args);
    return { exitCode, stdout: out.join(''), stderr: err.join('') };
  } finally {
    process.stdout.write = write.out;
    process.stderr.write = write.err;
  }
}

const classroom = fixture('vzsandbox/inventory.yaml');

test.serial('--list prints groups and _meta.hostvars as ansible-inventory does', async (t) => {
  const r = await vzsb('inventory', classroom, '--list');
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(out.all, { children: ['ungrouped', 'hypervisors', 'balancers', 'gateways', 'control'] }, 'ungrouped is listed even when empty, as Ansible does');
  t.deepEqual(out.hypervisors, { children: ['lab_a', 'lab_b'] });
  t.deepEqual(out.lab_a.hosts, ['hyp01.lab', 'hyp02.lab', 'hyp03.lab', 'hyp04.lab']);
  const inv = await loadInventory(classroom);
  t.deepEqual(Object.keys(out._meta.hostvars), [...inv.hosts.keys()].sort());
  t.deepEqual(out._meta.hostvars['hypb.lab'], inv.hosts.get('hypb.lab')!.vars);
  t.is(r.stdout.split('\n')[1], '    "_meta": {', 'four-space indent, keys sorted');
});

test.serial('--list --limit keeps only the selected hosts and the groups that still hold some', async (t) => {
  const r = await vzsb('inventory', classroom, '--list', '--limit', 'lab_b,gw.lab');
  t.is(r.exitCode, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(out._meta.hostvars).sort(), ['gw.lab', 'hypa.lab', 'hypb.lab']);
  t.deepEqual(out.all, { children: ['hypervisors', 'gateways'] });
  t.deepEqual(out.hypervisors, { children: ['lab_b'] });
  t.is(out.lab_a, undefined);
  t.is(out.balancers, undefined);
});

test.serial('--host prints one host\'s merged variables; the implicit localhost too', async (t) => {
  const r = await vzsb('inventory', classroom, '--host', 'hyp03.lab');
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(JSON.parse(r.stdout), {
    ansible_become: true,
    ansible_host: '127.0.0.1',
    ansible_user: 'deploy',
    driver: 'lxc',
    pool_max: 20,
    pool_standby: 6,
    vzsb_api_port: 8470,
  });
  const local = await vzsb('inventory', fixture('docs/groups.yaml'), '--host', 'localhost');
  t.is(local.exitCode, 0, local.stderr);
  t.deepEqual(JSON.parse(local.stdout), { ansible_connection: 'local' });
});

test.serial('--graph prints the group tree, from a group, and with --limit', async (t) => {
  const all = await vzsb('inventory', classroom, '--graph');
  t.is(all.exitCode, 0, all.stderr);
  t.true(all.stdout.startsWith('@all:\n  |--@ungrouped:\n  |--@hypervisors:\n  |  |--@lab_a:\n  |  |  |--hyp01.lab\n'));
  const sub = await vzsb('inventory', classroom, '--graph', 'lab_b');
  t.is(sub.stdout, '@lab_b:\n  |--hypa.lab\n  |--hypb.lab\n');
  const limited = await vzsb('inventory', classroom, '--graph', '--limit', '!hypervisors:!control');
  t.is(limited.stdout, '@all:\n  |--@balancers:\n  |  |--lb1.lab\n  |  |--lb2.lab\n  |--@gateways:\n  |  |--gw.lab\n');
});

test.serial('errors: exit 1 with a message naming file, line and path', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-inventory-cli-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const bad = join(dir, 'inventory.yaml');
  await writeFile(bad, 'all:\n  children:\n    hypervisors:\n      hosts:\n        hyp1:\n          ansible_port: "22a"\n');
  const r = await vzsb('inventory', bad, '--list');
  t.is(r.exitCode, 1);
  t.is(r.stdout, '');
  t.is(r.stderr, `vzsb: ${bad}:6: all.children.hypervisors.hosts.hyp1.ansible_port: expected an integer 1-65535, got "22a"\n`);

  const unknown = await vzsb('inventory', classroom, '--list', '--limit', 'hypervisor');
  t.is(unknown.exitCode, 1);
  t.is(unknown.stderr, `vzsb: ${classroom}: Could not match supplied host pattern: "hypervisor" names no host or group\n`);

  const nohost = await vzsb('inventory', classroom, '--host', 'hyp99.lab');
  t.is(nohost.exitCode, 1);
  t.is(nohost.stderr, `vzsb: ${classroom}: no host "hyp99.lab" in the inventory\n`);

  const nogroup = await vzsb('inventory', classroom, '--graph', 'hyp01.lab');
  t.is(nogroup.exitCode, 1);
  t.regex(nogroup.stderr, /--graph needs a group name; no group "hyp01.lab"/);
});

test.serial('usage: exactly one of --list, --host, --graph', async (t) => {
  const none = await vzsb('inventory', classroom);
  t.is(none.exitCode, 1);
  t.regex(none.stderr, /Choose exactly one of --list, --host NAME, --graph \[GROUP\]/);
  const two = await vzsb('inventory', classroom, '--list', '--graph');
  t.is(two.exitCode, 1);
});

test.serial('warnings go to stderr and do not fail the command', async (t) => {
  const r = await vzsb('inventory', fixture('layered/inventory.yaml'), '--list');
  t.is(r.exitCode, 0);
  t.regex(r.stderr, /^vzsb: warning: .*group_vars\/raleighh.yml: no group "raleighh" in the inventory; ignored\n$/);
});

test.serial('as a real process: JSON on stdout, exit code 0; a bad inventory exits 1; help has examples', async (t) => {
  const vzsbProcess = (...args: string[]) =>
    run(
      process.execPath,
      ['--import=tsx', '--input-type=module', '-e', `import { main } from ${JSON.stringify(mainModule)}; process.exitCode = await main(process.argv.slice(1));`, '--', ...args],
      { timeoutMs: 240_000 },
    );
  const [ok, bad, help] = await Promise.all([
    vzsbProcess('inventory', classroom, '--host', 'gw.lab'),
    vzsbProcess('inventory', fixture('vzsandbox'), '--list'),
    vzsbProcess('inventory', '--help'), // yargs ends the process after help, so only out of process
  ]);
  t.is(help.exitCode, 0);
  t.regex(help.stdout, /vzsb inventory inventory.yaml --host hyp01/);
  t.regex(help.stdout, /--limit/);
  t.is(ok.exitCode, 0, ok.stderr);
  t.like(JSON.parse(ok.stdout), { ansible_host: '127.0.0.4', ansible_port: 2022 });
  t.is(bad.exitCode, 1);
  t.regex(bad.stderr, /^vzsb: .*vzsandbox: cannot read the inventory: EISDIR/);
});
