import test from 'ava';
import { parse } from 'yaml';
import type { Lab } from '../../src/lab/index.js';
import { labInventoryYaml } from '../../src/lab/inventory.js';
import { parseLabOptions } from '../../src/lab/options.js';

const host = (name: string, last: number, groups: string[] = []) => ({
  name,
  address: `10.236.9.${last}`,
  port: 22,
  user: 'root',
  keyFile: '/labs/demo/id_ed25519',
  knownHostsFile: '/labs/demo/known_hosts',
  init: 'systemd' as const,
  nesting: false,
  groups,
});

const lab: Lab = {
  name: 'demo',
  dir: '/labs/demo',
  lxcPath: '/labs/demo/lxc',
  bridge: 'vzlab00000000',
  subnet: '10.236.9.0/24',
  gateway: '10.236.9.1',
  keyFile: '/labs/demo/id_ed25519',
  knownHostsFile: '/labs/demo/known_hosts',
  hosts: [host('hyp1', 11, ['hypervisors']), host('hyp2', 12, ['hypervisors']), host('gw1', 13, ['gateways', 'edge'])],
  ownerPid: undefined,
  createdAt: '2026-11-28T00:00:00.000Z',
};

test('the lab inventory puts every host in lab with its address, and in its own groups', (t) => {
  const inv = parse(labInventoryYaml(lab));
  t.deepEqual(inv.all.vars, {
    ansible_user: 'root',
    ansible_ssh_private_key_file: '/labs/demo/id_ed25519',
    ansible_ssh_common_args: '-o UserKnownHostsFile=/labs/demo/known_hosts -o StrictHostKeyChecking=yes',
    admin_sources: ['10.236.9.1'],
  });
  t.deepEqual(inv.all.children, {
    lab: { hosts: { hyp1: { ansible_host: '10.236.9.11', ansible_port: 22 }, hyp2: { ansible_host: '10.236.9.12', ansible_port: 22 }, gw1: { ansible_host: '10.236.9.13', ansible_port: 22 } } },
    hypervisors: { hosts: { hyp1: { container_subnet: '10.250.1.0/24', container_idmap_start: 1_000_000_000 }, hyp2: { container_subnet: '10.250.2.0/24', container_idmap_start: 1_016_777_216 } } },
    gateways: { hosts: { gw1: null } },
    edge: { hosts: { gw1: null } },
  });
});

test('with students, the gateways group carries them', (t) => {
  const students = [{ name: 'student1', ssh_keys: ['ssh-ed25519 AAAA x'] }];
  const inv = parse(labInventoryYaml(lab, { students }));
  t.deepEqual(inv.all.children.gateways, { hosts: { gw1: null }, vars: { students } });
});

test('host options: defaults, script init implies nesting, groups checked', (t) => {
  t.deepEqual(parseLabOptions({ name: 'a', hosts: 2 }).hosts, [
    { name: 'host1', init: 'systemd', nesting: false, groups: [] },
    { name: 'host2', init: 'systemd', nesting: false, groups: [] },
  ]);
  t.deepEqual(parseLabOptions({ name: 'a', hosts: [{ name: 'h', init: 'script', nesting: false, groups: ['x', 'x'] }] }).hosts, [
    { name: 'h', init: 'script', nesting: true, groups: ['x'] },
  ]);
  t.is(parseLabOptions({ name: 'a', hosts: 1, nesting: true }).hosts[0]!.nesting, true);
  t.is(parseLabOptions({ name: 'a', hosts: 1 }).readyTimeoutSec, 120);
  t.throws(() => parseLabOptions({ name: 'a', hosts: [{ name: 'h', groups: ['lab'] }] }), { message: /hosts\[0\]\.groups\[0\]: a group other than all, ungrouped, lab/ });
  t.throws(() => parseLabOptions({ name: 'a', hosts: [{ name: 'base' }] }), { message: /hosts\[0\]\.name: "base" is reserved/ });
  t.throws(() => parseLabOptions({ name: 'a', hosts: 1, colour: 'red' }), { message: /unknown field colour/ });
});
