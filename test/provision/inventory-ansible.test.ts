import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/common/exec.js';
import { getHost, loadInventory, selectHosts } from '../../src/provision/inventory/index.js';
import { ansibleJson, inventoryGraph, inventoryList } from '../../src/provision/inventory/render.js';

/**
 * The same inventories through ansible-core and through vzsb: same hosts, same groups, same
 * merged host variables, and the same text for --list and --graph. Skipped, with a message,
 * where ansible-core is not installed.
 */
const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/inventory/${name}`, import.meta.url));
const ansibleEnv = {
  ...process.env,
  ANSIBLE_INVENTORY_ENABLED: 'yaml',
  ANSIBLE_INVENTORY_UNPARSED_FAILED: 'true',
  ANSIBLE_HOST_PATTERN_MISMATCH: 'ignore',
  ANSIBLE_LOCALHOST_WARNING: 'false',
  ANSIBLE_NOCOLOR: '1',
};
const cwd = tmpdir(); // away from any ansible.cfg, group_vars/ or host_vars/ in the working directory

const available = await run('ansible-inventory', ['--version']).then(
  (r) => r.exitCode === 0,
  () => false,
);

// Two Ansible processes at a time: one per core, whatever else the machine runs.
let running = 0;
const waiting: (() => void)[] = [];
async function ansible(program: string, args: string[]): Promise<string> {
  if (running >= 2) await new Promise<void>((resolve) => waiting.push(resolve)); // handed a slot
  else running++;
  try {
    const r = await run(program, args, { env: ansibleEnv, cwd, timeoutMs: 240_000 });
    if (r.exitCode !== 0) throw new Error(`${r.command} exited ${r.exitCode}${r.timedOut ? ' (timed out)' : ''}: ${r.stderr}`);
    return r.stdout;
  } finally {
    const next = waiting.shift();
    if (next) next();
    else running--;
  }
}

const inventories: [string, () => Promise<string>][] = [
  ['docs/groups.yaml', async () => fixture('docs/groups.yaml')],
  ['docs/nested.yaml', async () => fixture('docs/nested.yaml')],
  ['docs/ranges.yaml', async () => fixture('docs/ranges.yaml')],
  ['docs/priority.yaml', async () => fixture('docs/priority.yaml')],
  ['docs/connection.yaml', async () => fixture('docs/connection.yaml')],
  ['layered', async () => fixture('layered/inventory.yaml')],
  ['vzsandbox', async () => fixture('vzsandbox/inventory.yaml')],
  ['patterns', async () => fixture('patterns/inventory.yaml')],
  ['inventory.example.yaml', async () => fileURLToPath(new URL('../../inventory.example.yaml', import.meta.url))],
  ['several parents, priority in group_vars, hosts declared twice', () =>
    writeInventory('parents', {
      'inventory.yaml': [
        'x:',
        '  children:',
        '    c:',
        '      hosts: { h: { v: host, w: 1 } }',
        '      vars: { v: c }',
        '  vars: { v: x, p: x }',
        'a:',
        '  children:',
        '    b:',
        '      children:',
        '        c:',
        '      vars: { p: b, ansible_group_priority: 5 }',
        '      hosts: { "h:2200": { w: 2 }, "k[08:11:3]": }',
        'z_top:',
        '  hosts: { h: , solo: }',
        '  vars: { p: z, q: z }',
        'm_top:',
        '  hosts: { h: }',
        '  vars: { q: m, ansible_group_priority: "3" }',
        'ungrouped:',
        '  hosts: { h: , lone: }',
      ].join('\n'),
      'group_vars/a.yml': 'ansible_group_priority: 99\nfrom_a: 1\n',
      'group_vars/b': 'p: group_vars b\n',
      'host_vars/k08.json': '{"j": [1, {"deep": true}]}',
    })],
  ['single names as strings, anchors, IPv6 and bracketed hosts', () =>
    writeInventory('strings', {
      'inventory.yaml': [
        'web:',
        '  hosts: w1',
        '  vars: &common { tier: front, enabled: yes, ratio: 0.5, none: ~, list: [1, two] }',
        'db:',
        '  children: web',
        '  hosts:',
        '    "[2001:db8::10]:2222":',
        '    2001:db8::11:',
        '    w1: *common',
      ].join('\n'),
    })],
];

async function writeInventory(name: string, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `vzsb-inventory-ansible-${name}-`));
  cleanup.push(dir);
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(dir, path, '..'), { recursive: true });
    await writeFile(join(dir, path), text);
  }
  return join(dir, 'inventory.yaml');
}
const cleanup: string[] = [];
test.after.always(async () => {
  await Promise.all(cleanup.map((d) => rm(d, { recursive: true, force: true })));
});

if (!available) {
  console.warn('inventory-ansible.test.ts: ansible-inventory is not on PATH; the comparison with Ansible is SKIPPED');
  test.skip('comparison with ansible-inventory (ansible-inventory is not on PATH)', () => {});
} else {
  for (const [name, path] of inventories) {
    test(`--list and --graph match ansible-inventory: ${name}`, async (t) => {
      const file = await path();
      const inventory = await loadInventory(file);
      const [list, graph] = await Promise.all([
        ansible('ansible-inventory', ['-i', file, '--list']),
        ansible('ansible-inventory', ['-i', file, '--graph']),
      ]);
      const ours = inventoryList(inventory);
      const theirs = JSON.parse(list) as Record<string, unknown>;
      // Field by field first, for a readable difference; then the exact text.
      t.deepEqual(Object.keys(ours).sort(), Object.keys(theirs).sort(), 'same groups');
      t.deepEqual(ours._meta, theirs._meta, 'same hosts with the same merged variables');
      t.deepEqual(ours, theirs);
      t.is(ansibleJson(ours), list.trimEnd());
      t.is(inventoryGraph(inventory), graph.trimEnd());
    });
  }

  test('--host matches ansible-inventory --host, the implicit localhost included', async (t) => {
    const file = fixture('layered/inventory.yaml');
    const inventory = await loadInventory(file);
    for (const name of ['host2', 'solo', '127.0.0.1']) {
      const theirs = JSON.parse(await ansible('ansible-inventory', ['-i', file, '--host', name])) as Record<string, unknown>;
      // Ansible adds the Python it runs under to the implicit localhost; vzsb runs no Python.
      if (name === '127.0.0.1') delete theirs.ansible_python_interpreter;
      t.deepEqual(getHost(inventory, name).vars, theirs, name);
    }
  });

  test('host patterns select what Ansible selects', async (t) => {
    const file = fixture('patterns/inventory.yaml');
    const patterns = [
      'all', '*', 'web1.example.com', 'webservers', 'ungrouped', 'empty', 'webservers:dbservers', 'dbservers,webservers',
      'webservers:!staging', 'webservers:&staging', 'webservers:dbservers:&staging:!web2.example.com', '!staging:webservers',
      '&production:dbservers:webservers', '!dbservers', '*.example.com', '*.lab', 'web*', 'db*', 'web[12].*',
      '~(web|db).*\\.example\\.com', '~web', 'webservers[0]', 'webservers[-1]', 'webservers[0:1]', 'webservers[1:]',
      '192.0.2.10', '192.0.2.*', 'all:!*.lab', 'localhost', 'webservers:127.0.0.1', '192.0.2.0', 'production:&192.0.2.0',
    ];
    const dir = await mkdtemp(join(tmpdir(), 'vzsb-inventory-patterns-'));
    cleanup.push(dir);
    const playbook = join(dir, 'list.yml');
    await writeFile(playbook, patterns.map((p) => `- hosts: ${JSON.stringify(p)}\n  gather_facts: false\n  tasks: []\n`).join(''));
    const out = await ansible('ansible-playbook', ['-i', file, '--list-hosts', playbook]);
    const theirs = out.split(/\n\s*play #\d+ /).slice(1).map((block) => block.split('\n').slice(3).map((l) => l.trim()).filter(Boolean));
    t.is(theirs.length, patterns.length);
    const inventory = await loadInventory(file);
    // Ansible creates the implicit localhost once per run and names it after the first pattern
    // that asked for it; within one run here that is "localhost".
    const local = (h: string) => (['127.0.0.1', '::1'].includes(h) ? 'localhost' : h);
    patterns.forEach((pattern, i) => {
      t.deepEqual(selectHosts(inventory, pattern).map(local).sort(), [...theirs[i]!].sort(), `pattern ${pattern}`);
    });
  });
}
