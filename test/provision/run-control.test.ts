import test from 'ava';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from '../helpers/deploy.js';

// Run control on several "hosts" that all run here through the local connection, each in its own
// directory: tags, --limit, serial batches and max_fail_percentage.
function setup(playbook: string) {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-runctl-'));
  const hosts = ['h1', 'h2', 'h3', 'h4'];
  writeFileSync(join(dir, 'inventory.yaml'), `all:\n  vars:\n    ansible_connection: local\n    base: ${dir}\n  hosts:\n${hosts.map((h) => `    ${h}:\n`).join('')}`);
  writeFileSync(join(dir, 'pb.yaml'), playbook);
  return { dir, inventory: join(dir, 'inventory.yaml'), playbook: join(dir, 'pb.yaml') };
}

const tagged = `- hosts: all
  tasks:
    - name: always
      command: "sh -c 'echo always >> {{base}}/{{inventory_hostname}}'"
      tags: [always]
    - name: setup
      command: "sh -c 'echo setup >> {{base}}/{{inventory_hostname}}'"
      tags: [setup]
    - name: firewall
      command: "sh -c 'echo firewall >> {{base}}/{{inventory_hostname}}'"
      tags: [firewall, setup]
    - name: debug only
      command: "sh -c 'echo debug >> {{base}}/{{inventory_hostname}}'"
      tags: [never, debug]
`;

test('--tags, --skip-tags, always and never, and --limit', async (t) => {
  const s = setup(tagged);
  const r = collectingReporter();
  await deploy({ inventory: s.inventory, playbook: s.playbook, tags: ['firewall'], limit: 'h1', reporter: r.reporter });
  t.is(readFileSync(join(s.dir, 'h1'), 'utf8'), 'always\nfirewall\n');
  t.deepEqual(r.hosts.map((h) => h.host), ['h1'], '--limit');
  await deploy({ inventory: s.inventory, playbook: s.playbook, skipTags: ['firewall'], limit: 'h2', reporter: collectingReporter().reporter });
  t.is(readFileSync(join(s.dir, 'h2'), 'utf8'), 'always\nsetup\n');
  await deploy({ inventory: s.inventory, playbook: s.playbook, tags: ['debug'], limit: 'h3', reporter: collectingReporter().reporter });
  t.is(readFileSync(join(s.dir, 'h3'), 'utf8'), 'always\ndebug\n');
  await deploy({ inventory: s.inventory, playbook: s.playbook, limit: 'all:!h1:!h2:!h3', reporter: collectingReporter().reporter });
  t.is(readFileSync(join(s.dir, 'h4'), 'utf8'), 'always\nsetup\nfirewall\n', 'no tags: everything but never');
});

test('serial batches stop the play when a batch fails above max_fail_percentage', async (t) => {
  const s = setup(`- hosts: all
  serial: 2
  max_fail_percentage: 0
  tasks:
    - name: fails on h2
      command: "sh -c 'test {{inventory_hostname}} != h2 && echo ran > {{base}}/{{inventory_hostname}}'"
`);
  const r = collectingReporter();
  const result = await deploy({ inventory: s.inventory, playbook: s.playbook, reporter: r.reporter });
  t.is(result.exitCode, 2);
  t.deepEqual(r.hosts.map((h) => [h.host, h.failed]).sort(), [['h1', 0], ['h2', 1]], 'the second batch (h3, h4) never ran');
  t.is(readFileSync(join(s.dir, 'h1'), 'utf8'), 'ran\n');

  const lenient = setup(`- hosts: all
  serial: "50%"
  max_fail_percentage: 50
  tasks:
    - command: "sh -c 'test {{inventory_hostname}} != h2'"
`);
  const r2 = collectingReporter();
  const result2 = await deploy({ inventory: lenient.inventory, playbook: lenient.playbook, reporter: r2.reporter });
  t.is(result2.exitCode, 2, 'a host failed');
  t.deepEqual(r2.hosts.map((h) => h.host).sort(), ['h1', 'h2', 'h3', 'h4'], '1 of 2 failed is not above 50%: every batch ran');
});
