import test from 'ava';
import { fileURLToPath } from 'node:url';
import { loadInventory, parseInventory } from '../../src/provision/inventory/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/inventory/${name}`, import.meta.url));

test('precedence: inventory group vars < group_vars/all < group_vars/<group> < inventory host vars < host_vars', async (t) => {
  const inv = await loadInventory(fixture('layered/inventory.yaml'));
  const vars = (h: string) => inv.hosts.get(h)!.vars;

  // Host vars in the inventory file beat every group_vars file.
  t.is(vars('host1').level, 'inventory host1');
  // group_vars/all beats even the deepest group's vars written in the inventory file (Ansible's documented order).
  t.is(vars('host1').sev, 'group_vars all');
  // group_vars/<child> beats inventory vars of all and group_vars/all.
  t.is(vars('host1').ntp_server, 'ntp.atlanta.example.com');
  // An inventory-file variable nobody overrides survives.
  t.is(vars('host1').only_inventory, 'southeast');
  // host_vars/<host>.yml beats everything.
  t.is(vars('host2').level, 'host_vars host2');
  // host_vars/<host>/ is a directory: files merged in lexical order.
  t.is(vars('host3').from_dir, 'b');
  t.is(vars('host3').level, 'host_vars host3 a');
  // A host only in `all`: all's inventory vars lose to group_vars/all.
  t.deepEqual(vars('solo'), { level: 'group_vars all', ntp_server: 'ntp.example.com', sev: 'group_vars all', release: '2026-11-28' });
});

test('group_vars/<group>: the file without extension comes first; a directory merges files in lexical order, recursively', async (t) => {
  const inv = await loadInventory(fixture('layered/inventory.yaml'));
  t.is(inv.hosts.get('host1')!.vars.southeast_file, 'no extension');
  const raleigh = inv.groups.get('raleigh')!.vars;
  t.deepEqual(raleigh, {
    cluster: 'raleigh-1',
    level: 'group_vars raleigh db_settings',
    db_port: 5432,
    nested_json: true,
  });
  t.false('ignored' in inv.hosts.get('host2')!.vars, 'hidden files, backups and other extensions are skipped');
  t.deepEqual(inv.warnings, [`${fixture('layered/group_vars/raleighh.yml')}: no group "raleighh" in the inventory; ignored`]);
  const origin = inv.hosts.get('host3')!.varOrigins.db_port!;
  t.is(origin.source, fixture('layered/group_vars/raleigh/db_settings'));
  t.is(origin.line, 2);
});

test('depth decides between groups: all < parent < child, whatever the names', (t) => {
  const text = [
    'all:',
    '  vars: { v: all }',
    '  children:',
    '    zz_parent:',
    '      vars: { v: parent }',
    '      children:',
    '        aa_child:',
    '          vars: { v: child }',
    '          hosts:',
    '            h1:',
    '            h2: { v: host }',
    '    mm_other:',
    '      vars: { v: other }',
    '      hosts: { h1: }',
  ].join('\n');
  const inv = parseInventory(text, { source: 'd.yaml', baseDir: '/' });
  t.is(inv.hosts.get('h1')!.vars.v, 'child', 'depth 2 beats depth-1 groups even though their names sort later');
  t.deepEqual(inv.hosts.get('h1')!.groups, ['mm_other', 'zz_parent', 'aa_child']);
  t.is(inv.hosts.get('h2')!.vars.v, 'host');
  t.deepEqual(inv.hosts.get('h1')!.varOrigins.v, { source: 'd.yaml', path: 'all.children.zz_parent.children.aa_child.vars.v', line: 8 });
});

test('depth is the longest path from all when a group has several parents', (t) => {
  const text = 'a:\n  children:\n    b:\n      children:\n        c:\nx:\n  children:\n    c:\n      hosts: { h: }\n      vars: { v: c }\n  vars: { v: x }\n';
  const inv = parseInventory(text, { source: 'p.yaml', baseDir: '/' });
  t.is(inv.groups.get('c')!.depth, 3);
  t.deepEqual(inv.groups.get('c')!.parents, ['b', 'x']);
  t.deepEqual(inv.hosts.get('h')!.groups, ['a', 'x', 'b', 'c']);
  t.is(inv.hosts.get('h')!.vars.v, 'c');
});

test('docs: same depth merges by name, ansible_group_priority overrides; priority is not a variable', async (t) => {
  const inv = await loadInventory(fixture('docs/priority.yaml'));
  t.is(inv.hosts.get('shared')!.vars.testvar, 'a', 'priority 10 beats the default 1');
  t.deepEqual(inv.hosts.get('shared')!.groups, ['b_group', 'a_group']);
  t.is(inv.hosts.get('plain')!.vars.testvar, 'd', 'same priority: the later name wins');
  t.is(inv.groups.get('a_group')!.priority, 10);
  t.false('ansible_group_priority' in inv.groups.get('a_group')!.vars);
});

test('ansible_group_priority in a group_vars file is an ordinary variable, as in Ansible', (t) => {
  const inv = parseInventory('a:\n  hosts: { h: }\n  vars: { v: a }\nb:\n  hosts: { h: }\n  vars: { v: b }\n', {
    source: 'g.yaml',
    baseDir: '/',
    groupVars: { a: [{ source: 'group_vars/a.yml', text: 'ansible_group_priority: 50\n' }] },
  });
  t.is(inv.groups.get('a')!.priority, 1);
  t.is(inv.hosts.get('h')!.vars.v, 'b');
  t.is(inv.hosts.get('h')!.vars.ansible_group_priority, 50);
});

test('group_vars and host_vars given to the pure parser; later files win; empty files are ignored', (t) => {
  const inv = parseInventory('web:\n  hosts:\n    w1:\n      port: 1\n', {
    source: 'i.yaml',
    baseDir: '/etc/vzsb',
    homeDir: '/home/admin',
    groupVars: {
      all: [{ source: 'group_vars/all.yml', text: 'ansible_ssh_private_key_file: ~/.ssh/lab\nport: 0\n' }],
      web: [
        { source: 'group_vars/web/a.yml', text: 'port: 2\nuser: a\n' },
        { source: 'group_vars/web/b.yml', text: 'user: b\n' },
        { source: 'group_vars/web/c.yml', text: '# nothing\n' },
      ],
    },
    hostVars: { w1: [{ source: 'host_vars/w1.json', text: '{"ansible_user": "deploy"}' }] },
  });
  const w1 = inv.hosts.get('w1')!;
  t.deepEqual(w1.vars, { ansible_ssh_private_key_file: '~/.ssh/lab', port: 1, user: 'b', ansible_user: 'deploy' });
  t.is(w1.connection.privateKeyFile, '/home/admin/.ssh/lab');
  t.is(w1.connection.user, 'deploy');
  t.deepEqual(inv.groups.get('web')!.vars, { port: 2, user: 'b' });
  t.deepEqual(w1.varOrigins.user, { source: 'group_vars/web/b.yml', path: 'user', line: 1 });
});

test('vzsandbox fixture: role groups, ranges with per-host connection vars, a control host on local', async (t) => {
  const inv = await loadInventory(fixture('vzsandbox/inventory.yaml'));
  t.deepEqual(inv.groups.get('hypervisors')!.children, ['lab_a', 'lab_b']);
  const hypb = inv.hosts.get('hypb.lab')!;
  t.deepEqual(hypb.vars, {
    ansible_user: 'deploy',
    ansible_become: true,
    vzsb_api_port: 8470,
    pool_standby: 6,
    pool_max: 2,
    driver: 'lxc',
    ansible_port: '2222',
    ansible_ssh_private_key_file: 'keys/hypb',
  });
  t.deepEqual(hypb.connection, {
    kind: 'ssh',
    host: 'hypb.lab',
    port: 2222,
    user: 'deploy',
    privateKeyFile: fixture('vzsandbox/keys/hypb'),
    become: true,
    becomeUser: 'root',
  });
  t.is(inv.hosts.get('hypa.lab')!.vars.pool_max, 10);
  t.is(inv.hosts.get('hyp03.lab')!.vars.pool_max, 20);
  t.like(inv.hosts.get('gw.lab')!.connection, { host: '127.0.0.4', port: 2022 });
  t.like(inv.hosts.get('localhost')!.connection, { kind: 'local', become: false, user: 'deploy' });
});
