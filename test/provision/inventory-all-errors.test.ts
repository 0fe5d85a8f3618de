import test from 'ava';
import { InventoryErrors, parseInventory } from '../../src/provision/inventory/index.js';

const lines = (...l: string[]) => l.join('\n') + '\n';

test('three bad fields on three hosts: every one is named, in the order of the file', (t) => {
  const text = lines(
    'all:',
    '  children:',
    '    hypervisors:',
    '      hosts:',
    '        hyp1:',
    '          ansible_port: "22a"',
    '        hyp2:',
    '          ansible_become: maybe',
    '    gateways:',
    '      hosts:',
    '        gw1:',
    '          ansible_connection: docker',
  );
  const err = t.throws(() => parseInventory(text, { source: 'inventory.yaml', homeDir: '/home/u' }), { instanceOf: InventoryErrors });
  t.deepEqual(err?.errors.map((e) => e.message), [
    'inventory.yaml:6: all.children.hypervisors.hosts.hyp1.ansible_port: expected an integer 1-65535, got "22a"',
    'inventory.yaml:8: all.children.hypervisors.hosts.hyp2.ansible_become: expected a boolean (true/false, yes/no), got "maybe"',
    'inventory.yaml:12: all.children.gateways.hosts.gw1.ansible_connection: expected ssh or local, got "docker"',
  ]);
  t.regex(err!.message, /^3 problems in the inventory:\n {2}inventory\.yaml:6: .*\n {2}inventory\.yaml:8: .*\n {2}inventory\.yaml:12: /);
});

test('several bad fields of one host and bad structure elsewhere are all named', (t) => {
  const text = lines('all:', '  hosts:', '    w1:', '      ansible_port: 0', '      ansible_user: [a, b]', '  childs:', '    web:', 'db: w1', 'web:', '  hosts: [a]');
  const err = t.throws(() => parseInventory(text, { source: 'inventory.yaml', homeDir: '/home/u' }), { instanceOf: InventoryErrors });
  // Structure first (one pass over the file), then each host's connection.
  t.deepEqual(err?.errors.map((e) => e.message), [
    'inventory.yaml:6: all.childs: unknown key "childs": a group has only hosts, children and vars (did you mean "children"?)',
    'inventory.yaml:8: db: expected a group (a mapping with hosts, children or vars, or nothing), got "w1"',
    'inventory.yaml:10: web.hosts: expected a mapping of hosts (each name followed by ":"), got a list; write "name:" on its own line instead of "- name"',
  ]);
  const fixed = text.replace('  childs:\n    web:\n', '').replace('db: w1\n', '').replace('  hosts: [a]\n', '');
  const second = t.throws(() => parseInventory(fixed, { source: 'inventory.yaml', homeDir: '/home/u' }), { instanceOf: InventoryErrors });
  t.deepEqual(second?.errors.map((e) => e.message), [
    'inventory.yaml:4: all.hosts.w1.ansible_port: expected an integer 1-65535, got number 0',
    'inventory.yaml:5: all.hosts.w1.ansible_user: expected a non-empty string, got a list',
  ]);
});
