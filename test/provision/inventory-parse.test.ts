import test from 'ava';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { expandHostRange, loadInventory, parseInventory } from '../../src/provision/inventory/index.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/inventory/${name}`, import.meta.url));
const hostNames = (inv: { hosts: Map<string, unknown> }) => [...inv.hosts.keys()];

test('docs: a host in several groups, groups of groups, ungrouped', async (t) => {
  const inv = await loadInventory(fixture('docs/groups.yaml'));
  t.deepEqual(hostNames(inv), [
    'mail.example.com',
    'foo.example.com',
    'bar.example.com',
    'one.example.com',
    'two.example.com',
    'three.example.com',
  ]);
  t.deepEqual([...inv.groups.keys()], ['all', 'ungrouped', 'webservers', 'dbservers', 'east', 'west', 'prod', 'test']);
  t.deepEqual(inv.groups.get('all')!.children, ['ungrouped', 'webservers', 'dbservers', 'prod', 'test']);
  t.deepEqual(inv.groups.get('ungrouped')!.hosts, ['mail.example.com']);
  t.deepEqual(inv.groups.get('prod')!.children, ['east']);
  t.deepEqual(inv.groups.get('east')!.parents, ['prod']);
  t.is(inv.groups.get('east')!.depth, 2);
  t.deepEqual(inv.hosts.get('foo.example.com')!.groups, ['prod', 'webservers', 'east']);
  t.deepEqual(inv.hosts.get('three.example.com')!.groups, ['dbservers', 'test', 'west']);
  t.deepEqual(inv.warnings, []);
});

test('docs: nested groups to any depth inherit group vars; empty child groups exist', async (t) => {
  const inv = await loadInventory(fixture('docs/nested.yaml'));
  t.deepEqual(inv.groups.get('usa')!.children, ['southeast', 'northeast', 'northwest', 'southwest']);
  t.is(inv.groups.get('atlanta')!.depth, 3);
  t.deepEqual(inv.groups.get('northwest')!.hosts, []);
  const host2 = inv.hosts.get('host2')!;
  t.deepEqual(host2.groups, ['usa', 'southeast', 'atlanta', 'raleigh']);
  t.deepEqual(host2.vars, {
    some_server: 'foo.southeast.example.com',
    halon_system_timeout: 30,
    self_destruct_countdown: 60,
    escape_pods: 2,
    ntp_server: 'ntp.atlanta.example.com',
    proxy: 'proxy.atlanta.example.com',
    http_port: 303,
    maxRequestsPerChild: 909,
  });
  t.deepEqual(inv.hosts.get('host3')!.vars, {
    some_server: 'foo.southeast.example.com',
    halon_system_timeout: 30,
    self_destruct_countdown: 60,
    escape_pods: 2,
  });
  t.deepEqual(inv.groups.get('ungrouped')!.hosts, ['mail.example.com']);
  t.deepEqual(inv.groups.get('all')!.hosts, ['mail.example.com']);
});

test('docs: host ranges with padding, stride, letters and several ranges', async (t) => {
  const inv = await loadInventory(fixture('docs/ranges.yaml'));
  const web = inv.groups.get('webservers')!.hosts;
  t.is(web.length, 50);
  t.is(web[0], 'www01.example.com');
  t.is(web[49], 'www50.example.com');
  const odd = inv.groups.get('oddweb')!.hosts;
  t.is(odd.length, 25);
  t.deepEqual(odd.slice(0, 3), ['www01.example.com', 'www03.example.com', 'www05.example.com']);
  t.is(inv.hosts.get('www03.example.com')!.vars.http_port, 8080);
  t.deepEqual(inv.hosts.get('www02.example.com')!.vars, {});
  t.deepEqual(inv.groups.get('dbservers')!.hosts, ['db-a', 'db-b', 'db-c', 'db-d', 'db-e', 'db-f'].map((h) => `${h}.example.com`));
  t.deepEqual(inv.groups.get('racks')!.hosts, ['r1-na', 'r1-nb', 'r1-nc', 'r2-na', 'r2-nb', 'r2-nc']);
});

test('expandHostRange: the forms Ansible accepts', (t) => {
  t.deepEqual(expandHostRange('plain.example.com'), ['plain.example.com']);
  t.deepEqual(expandHostRange('h[1:3]'), ['h1', 'h2', 'h3']);
  t.deepEqual(expandHostRange('h[8:10]'), ['h8', 'h9', 'h10']);
  t.deepEqual(expandHostRange('h[08:10]'), ['h08', 'h09', 'h10']);
  t.deepEqual(expandHostRange('h[0:9:4]'), ['h0', 'h4', 'h8']);
  t.deepEqual(expandHostRange('[a:c]x'), ['ax', 'bx', 'cx']);
  t.deepEqual(expandHostRange('h[A:E:2]'), ['hA', 'hC', 'hE']);
  t.deepEqual(expandHostRange('h[1:1]'), ['h1']);
});

test('docs: behavioral parameters become connection specs', async (t) => {
  const inv = await loadInventory(fixture('docs/connection.yaml'), { homeDir: '/home/tester' });
  const c = (name: string) => inv.hosts.get(name)!.connection;
  t.deepEqual(c('jumper'), {
    kind: 'ssh',
    host: '192.0.2.50',
    port: 5555,
    user: undefined,
    privateKeyFile: undefined,
    become: false,
    becomeUser: 'root',
  });
  t.like(c('some_host'), { host: 'some_host', port: 2222, user: 'manager' });
  t.is(c('aws_host').privateKeyFile, '/home/example/.ssh/aws.pem');
  t.like(c('other.example.com'), { host: 'other.example.com', port: 2200 });
  t.is(inv.hosts.get('other.example.com')!.vars.ansible_port, 2200);
  t.like(c('localhost'), { kind: 'local', host: 'localhost' });
  t.false(inv.hosts.get('localhost')!.implicit);
  t.deepEqual(c('relative_key'), {
    kind: 'ssh',
    host: 'relative_key',
    port: 22,
    user: 'deploy',
    privateKeyFile: fixture('docs/keys/deploy'),
    become: true,
    becomeUser: 'postgres',
  });
  t.like(c('home_key'), { privateKeyFile: '/home/tester/.ssh/id_ed25519', become: true, becomeUser: 'root' });
});

test('the implicit localhost exists only when the inventory lists no localhost', (t) => {
  const without = parseInventory('web:\n  hosts:\n    w1:\n  vars:\n    x: 1\nall:\n  vars:\n    y: 2\n', { source: 'a.yaml', baseDir: '/srv' });
  t.deepEqual([...without.implicitHosts.keys()], ['localhost', '127.0.0.1', '::1']);
  const implicit = without.implicitHosts.get('localhost')!;
  t.true(implicit.implicit);
  t.is(implicit.connection.kind, 'local');
  t.deepEqual(implicit.vars, { y: 2, ansible_connection: 'local' });
  t.deepEqual(implicit.groups, []);
  t.false(without.hosts.has('localhost'));

  const listed = parseInventory('all:\n  hosts:\n    localhost:\n', { source: 'b.yaml', baseDir: '/srv' });
  t.is(listed.implicitHosts.size, 0);
  t.is(listed.hosts.get('localhost')!.connection.kind, 'ssh', 'a listed localhost connects as its variables say');
});

test('booleans, ports and aliases are read the way Ansible reads them', (t) => {
  const inv = parseInventory(
    [
      'all:',
      '  hosts:',
      '    a: { ansible_become: "True", ansible_port: "2201" }',
      '    b: { ansible_become: on, ansible_ssh_host: 10.0.0.2, ansible_ssh_user: u, ansible_ssh_port: 2202 }',
      '    c: { ansible_become: 0, ansible_private_key_file: k, ansible_connection: smart }',
      '    d: { ansible_become: "n", ansible_host: ignored, ansible_ssh_host: h, ansible_port: 1, ansible_ssh_port: 2 }',
      '    e: { ansible_become: null, ansible_user: null }',
      '    f: { ansible_connection: ansible.builtin.local }',
    ].join('\n'),
    { source: 'x.yaml', baseDir: '/inv', homeDir: '/root' },
  );
  const c = (name: string) => inv.hosts.get(name)!.connection;
  t.like(c('a'), { become: true, port: 2201 });
  t.like(c('b'), { become: true, host: '10.0.0.2', user: 'u', port: 2202 });
  t.like(c('c'), { become: false, privateKeyFile: '/inv/k', kind: 'ssh' });
  t.like(c('d'), { become: false, host: 'h', port: 2 }, 'ansible_ssh_host and ansible_ssh_port win, as in Ansible');
  t.like(c('e'), { become: false, user: undefined });
  t.like(c('f'), { kind: 'local' });
});

test('YAML 1.1 like Ansible: yes/no booleans, anchors and merge keys, dates as text, vault values kept', (t) => {
  const text = [
    'all:',
    '  vars:',
    '    enabled: yes',
    '    disabled: Off',
    '    y: n',
    '    day: 2026-11-28',
    '    secret: !vault |',
    '      $ANSIBLE_VAULT;1.1;AES256',
    '      6162',
    '    base: &base { a: 1, b: 2 }',
    '    derived:',
    '      <<: *base',
    '      b: 3',
    '  hosts:',
    '    h1:',
  ].join('\n');
  const v = parseInventory(text, { source: 'y.yaml', baseDir: '/' }).hosts.get('h1')!.vars;
  t.is(v.enabled, true);
  t.is(v.disabled, false);
  t.is(v.y, 'n', 'PyYAML reads y and n as strings');
  t.is(v.day, '2026-11-28');
  t.deepEqual(v.secret, { __ansible_vault: '$ANSIBLE_VAULT;1.1;AES256\n6162\n' });
  t.deepEqual(v.derived, { a: 1, b: 3 });
});

test('a host defined twice keeps both groups and merges its vars (later wins)', (t) => {
  const text = 'a:\n  hosts:\n    h:\n      x: 1\n      y: 1\nb:\n  hosts:\n    h:\n      y: 2\n';
  const inv = parseInventory(text, { source: 'z.yaml', baseDir: '/' });
  t.deepEqual(inv.hosts.get('h')!.vars, { x: 1, y: 2 });
  t.deepEqual(inv.hosts.get('h')!.groups, ['a', 'b']);
  t.deepEqual(inv.hosts.get('h')!.varOrigins.y, { source: 'z.yaml', path: 'b.hosts.h.y', line: 9 });
});

test('inventory.example.yaml parses into the vzsandbox role groups, each hypervisor with its own network', async (t) => {
  const path = fileURLToPath(new URL('../../inventory.example.yaml', import.meta.url));
  const inv = await loadInventory(path);
  t.deepEqual(inv.groups.get('hypervisors')!.hosts, ['hyp01.example.org', 'hyp02.example.org']);
  t.deepEqual(inv.groups.get('balancers')!.hosts, ['lb01.example.org']);
  t.deepEqual(inv.groups.get('gateways')!.hosts, ['gw01.example.org']);
  const subnets = inv.groups.get('hypervisors')!.hosts.map((h) => inv.hosts.get(h)!.vars.container_subnet);
  t.is(new Set(subnets).size, 2);
  t.true(Array.isArray(inv.hosts.get('gw01.example.org')!.vars.students));
});

test('warnings for what Ansible accepts but is probably a mistake', (t) => {
  const text = 'web-servers:\n  hosts:\n    h:\ndb:\n  hosts:\n    "h:2200":\n    web-servers:\n';
  const inv = parseInventory(text, { source: 'w.yaml', baseDir: '/', hostVars: { nosuch: [{ source: 'host_vars/nosuch.yml', text: 'a: 1\n' }] } });
  t.false('ansible_port' in inv.hosts.get('h')!.vars, 'like Ansible, the port of a later definition is ignored');
  t.deepEqual(inv.warnings, [
    'w.yaml:6: db.hosts["h:2200"]: port 2200 ignored: host "h" was defined before (use ansible_port)',
    'w.yaml: group names that Ansible warns about (use letters, digits and _ only): web-servers',
    'w.yaml: "web-servers" is both a host and a group name',
    'host_vars/nosuch.yml: no host "nosuch" in the inventory; ignored',
  ]);
});
