import test from 'ava';
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VzsbError } from '../../src/common/errors.js';
import { InventoryError, loadInventory, parseInventory, type ParseOptions } from '../../src/provision/inventory/index.js';

const lines = (...l: string[]) => l.join('\n') + '\n';

// [what, inventory text, exact message, extra options]
const cases: [string, string, string, Partial<ParseOptions>?][] = [
  [
    'a port that is not a number',
    lines('all:', '  children:', '    hypervisors:', '      hosts:', '        hyp1:', '          ansible_port: "22a"'),
    'inventory.yaml:6: all.children.hypervisors.hosts.hyp1.ansible_port: expected an integer 1-65535, got "22a"',
  ],
  [
    'a port out of range, set on a group, named with the host it reached',
    lines('web:', '  hosts:', '    w1:', '  vars:', '    ansible_port: 70000'),
    'inventory.yaml:5: web.vars.ansible_port: expected an integer 1-65535, got number 70000 (for host w1)',
  ],
  [
    'a bad port in a group_vars file',
    lines('web:', '  hosts:', '    w1:'),
    'group_vars/web.yml:2: ansible_port: expected an integer 1-65535, got number 0 (for host w1)',
    { groupVars: { web: [{ source: 'group_vars/web.yml', text: '# port\nansible_port: 0\n' }] } },
  ],
  [
    'a port after the host name that is not a port',
    lines('all:', '  hosts:', '    "web1:99999":'),
    'inventory.yaml:3: all.hosts["web1:99999"]: expected a port 1-65535 after ":", got "99999"',
  ],
  [
    'a connection type vzsb cannot use',
    lines('all:', '  hosts:', '    w1:', '      ansible_connection: docker'),
    'inventory.yaml:4: all.hosts.w1.ansible_connection: expected ssh or local, got "docker"',
  ],
  [
    'become that is not a boolean',
    lines('all:', '  vars:', '    ansible_become: maybe', '  hosts:', '    w1:'),
    'inventory.yaml:3: all.vars.ansible_become: expected a boolean (true/false, yes/no), got "maybe" (for host w1)',
  ],
  [
    'a user that is a list',
    lines('all:', '  hosts:', '    w1:', '      ansible_user: [a, b]'),
    'inventory.yaml:4: all.hosts.w1.ansible_user: expected a non-empty string, got a list',
  ],
  [
    'a templated host address',
    lines('all:', '  hosts:', '    w1:', '      ansible_host: "{{ inventory_hostname }}.lab"'),
    'inventory.yaml:4: all.hosts.w1.ansible_host: expected a plain value (templated connection variables are not supported), got "{{ inventory_hostname }}.lab"',
  ],
  [
    'a vault-encrypted connection variable',
    lines('all:', '  hosts:', '    w1:', '      ansible_user: !vault |', '        $ANSIBLE_VAULT;1.1;AES256'),
    'inventory.yaml:4: all.hosts.w1.ansible_user: expected a plain value, got a !vault value: vzsb does not decrypt Ansible Vault',
  ],
  [
    'a group that is its own ancestor',
    lines('all:', '  children:', '    a:', '      children:', '        b:', '          children:', '            a:'),
    'inventory.yaml:7: all.children.a.children.b.children.a: group "a" would be its own ancestor: a -> b -> a',
  ],
  [
    'a group that is its own child',
    lines('a:', '  children:', '    a:'),
    'inventory.yaml:3: a.children.a: group "a" would be its own ancestor: a -> a',
  ],
  [
    'a loop made across two top-level definitions',
    lines('a:', '  children:', '    b:', 'b:', '  children:', '    c:', 'c:', '  children:', '    a:'),
    'inventory.yaml:9: c.children.a: group "a" would be its own ancestor: a -> b -> c -> a',
  ],
  ['all as a child', lines('web:', '  children:', '    all:'), 'inventory.yaml:3: web.children.all: group "all" cannot be a child of another group'],
  [
    'a range that runs backwards',
    lines('all:', '  hosts:', '    www[05:01].lab:'),
    'inventory.yaml:3: all.hosts["www[05:01].lab"]: bad host range "[05:01]" in "www[05:01].lab": begin 05 is after end 01',
  ],
  [
    'a range that mixes letters and numbers',
    lines('all:', '  hosts:', '    db-[a:5]:'),
    'inventory.yaml:3: all.hosts["db-[a:5]"]: bad host range "[a:5]" in "db-[a:5]": begin and end must both be numbers or both be single letters of the same case',
  ],
  [
    'a zero step',
    lines('all:', '  hosts:', '    h[1:9:0]:'),
    'inventory.yaml:3: all.hosts["h[1:9:0]"]: bad host range "[1:9:0]" in "h[1:9:0]": step must be a positive integer, got "0"',
  ],
  [
    'padding of different widths',
    lines('all:', '  hosts:', '    h[01:100]:'),
    'inventory.yaml:3: all.hosts["h[01:100]"]: bad host range "[01:100]" in "h[01:100]": a zero-padded begin needs an end of the same width',
  ],
  ['an unclosed range', lines('all:', '  hosts:', '    h[1:3:'), 'inventory.yaml:3: all.hosts["h[1:3"]: "[" without "]" in host name "h[1:3"'],
  ['a range without a colon', lines('all:', '  hosts:', '    h[1-3]:'), 'inventory.yaml:3: all.hosts["h[1-3]"]: bad host range "[1-3]" in "h[1-3]": expected [begin:end] or [begin:end:step]'],
  [
    'hosts written as a list',
    lines('webservers:', '  hosts:', '    - web1', '    - web2'),
    'inventory.yaml:3: webservers.hosts: expected a mapping of hosts (each name followed by ":"), got a list; write "name:" on its own line instead of "- name"',
  ],
  [
    'children written as a list',
    lines('all:', '  children:', '    - web'),
    'inventory.yaml:3: all.children: expected a mapping of child groups (each name followed by ":"), got a list; write "name:" on its own line instead of "- name"',
  ],
  [
    'a duplicate key',
    lines('all:', '  hosts:', '    w1:', '      ansible_port: 22', '      ansible_port: 2222'),
    'inventory.yaml:5: all.hosts.w1.ansible_port: duplicate key "ansible_port"',
  ],
  ['a duplicate group', lines('web:', '  hosts:', '    w1:', 'web:', '  hosts:', '    w2:'), 'inventory.yaml:4: web: duplicate key "web"'],
  ['group vars that are a list', lines('web:', '  vars:', '    - a: 1'), 'inventory.yaml:3: web.vars: expected group variables (a mapping of names to values), got a list'],
  ['group vars that are a string', lines('web:', '  vars: "x=1"'), 'inventory.yaml:2: web.vars: expected group variables (a mapping of names to values), got "x=1"'],
  ['host vars that are a list', lines('all:', '  hosts:', '    w1: [1, 2]'), 'inventory.yaml:3: all.hosts.w1: expected host variables (a mapping of names to values), got a list'],
  ['host vars that are a string', lines('all:', '  hosts:', '    w1: ansible_port=22'), 'inventory.yaml:3: all.hosts.w1: expected host variables (a mapping of names to values), got "ansible_port=22"'],
  [
    'an unknown key in a group',
    lines('all:', '  children:', '    web:', '      host:', '        w1:'),
    'inventory.yaml:4: all.children.web.host: unknown key "host": a group has only hosts, children and vars (did you mean "hosts"?)',
  ],
  [
    'a child group written beside hosts instead of under children',
    lines('all:', '  children:', '    hypervisors:', '      lab_a:', '        hosts:', '          h1:'),
    'inventory.yaml:4: all.children.hypervisors.lab_a: unknown key "lab_a": a group has only hosts, children and vars (to make "lab_a" a child group, put it under children:)',
  ],
  ['a misspelled children', lines('all:', '  childs:', '    web:'), 'inventory.yaml:2: all.childs: unknown key "childs": a group has only hosts, children and vars (did you mean "children"?)'],
  ['a group that is a list', lines('web:', '  - w1'), 'inventory.yaml:2: web: expected a group (a mapping with hosts, children or vars, or nothing), got a list'],
  ['a group that is a string', lines('web: w1'), 'inventory.yaml:1: web: expected a group (a mapping with hosts, children or vars, or nothing), got "w1"'],
  ['a priority that is not a number', lines('web:', '  vars:', '    ansible_group_priority: high'), 'inventory.yaml:3: web.vars.ansible_group_priority: expected an integer, got "high"'],
  ['an empty file', '# nothing\n', 'inventory.yaml: empty inventory: expected a mapping of groups such as `all:`'],
  ['a list at the top', lines('- all'), 'inventory.yaml:1: expected a mapping of groups such as `all:`, got a list'],
  ['an inventory plugin configuration', lines('plugin: aws_ec2', 'regions: [eu-west-1]'), 'inventory.yaml:1: plugin: this is an inventory plugin configuration, not a YAML inventory'],
  ['broken YAML', lines('all:', '  hosts: [a', 'b: 1'), 'inventory.yaml:3: invalid YAML: Flow sequence in block collection must be sufficiently indented and end with a ]'],
  [
    'an INI inventory',
    lines('# hosts', '[web]', 'w1 ansible_port=22'),
    'inventory.yaml:3: invalid YAML: Unexpected scalar at node end (this looks like an INI inventory; vzsb reads the YAML inventory format only)',
  ],
  [
    'an INI inventory of one group',
    lines('[web]'),
    'inventory.yaml:1: expected a mapping of groups such as `all:`, got a list (this looks like an INI inventory; vzsb reads the YAML inventory format only)',
  ],
  [
    'a group_vars file that is a list',
    lines('web:', '  hosts:', '    w1:'),
    'group_vars/web.yml:1: expected a mapping of variable names to values, got a list',
    { groupVars: { web: [{ source: 'group_vars/web.yml', text: '- a\n- b\n' }] } },
  ],
  [
    'a host_vars file with a duplicate key',
    lines('web:', '  hosts:', '    w1:'),
    'host_vars/w1.yml:2: a: duplicate key "a"',
    { hostVars: { w1: [{ source: 'host_vars/w1.yml', text: 'a: 1\na: 2\n' }] } },
  ],
];

for (const [what, text, message, options] of cases) {
  test(`error: ${what}`, (t) => {
    const err = t.throws(() => parseInventory(text, { source: 'inventory.yaml', baseDir: '/srv', ...options }), { instanceOf: InventoryError });
    t.is(err!.message, message);
    t.true(err instanceof VzsbError);
    t.is(err!.code, 'E_INVENTORY');
  });
}

test('loadInventory: an unreadable inventory names the path; a bad group_vars file names itself and its line', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-inventory-errors-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await t.throwsAsync(loadInventory(join(dir, 'missing.yaml')), { message: new RegExp(`^${join(dir, 'missing.yaml')}: cannot read the inventory: ENOENT`) });
  await writeFile(join(dir, 'inventory.yaml'), lines('web:', '  hosts:', '    w1:'));
  await mkdir(join(dir, 'group_vars', 'web'), { recursive: true });
  await writeFile(join(dir, 'group_vars', 'web', 'a.yml'), 'ok: 1\n');
  await writeFile(join(dir, 'group_vars', 'web', 'b.yml'), 'x: 1\nansible_become: perhaps\n');
  await t.throwsAsync(loadInventory(join(dir, 'inventory.yaml')), {
    message: `${join(dir, 'group_vars', 'web', 'b.yml')}:2: ansible_become: expected a boolean (true/false, yes/no), got "perhaps" (for host w1)`,
  });
});
