import test from 'ava';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { deploy } from '../../src/provision/deploy.js';
import { useLab } from '../helpers/lab.js';
import { collectingReporter, labInventory } from '../helpers/deploy.js';

// Real sshd hosts: four LXC system containers of a lab, each with its own filesystem.
const lab = useLab(test, { hosts: 4 });
const playbook = join(import.meta.dirname, '../fixtures/playbooks/every-op.yaml');
const cli = join(import.meta.dirname, '../../bin/vzsb.js');

const apply = async (inventory: string, options: { check?: boolean; limit?: string } = {}) => {
  const r = collectingReporter();
  const result = await deploy({ inventory, playbook, reporter: r.reporter, ssh: { knownHostsFiles: [lab.hosts[0]!.knownHostsFile] }, ...options });
  return { ...r, result };
};

test.serial('check predicts the first run exactly; the second run changes nothing; round trips stay at 2', async (t) => {
  const inventory = labInventory({ targets: lab.hosts });
  const predicted = await apply(inventory, { check: true });
  t.is(predicted.result.exitCode, 0);
  const first = await apply(inventory);
  t.is(first.result.exitCode, 0, JSON.stringify(first.hosts.map((h) => h.error)));
  for (const h of lab.hosts) {
    t.true(first.changed(h.name).length >= 6, `${h.name} changed ${first.changed(h.name)}`);
    t.deepEqual(predicted.changed(h.name), first.changed(h.name), `check mode on ${h.name} predicts the real run`);
  }
  // the handler ran exactly once, on every host
  for (const h of lab.hosts) {
    const r = await lab.ssh(h, 'wc -l < /srv/vzsb-test/restarts; cat /srv/vzsb-test/motd');
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /^1\nWelcome to .* \(test host\)\n\* one\n\* two\n$/);
  }
  const second = await apply(inventory);
  t.is(second.result.exitCode, 0);
  for (const h of second.hosts) {
    t.is(h.changed, 0, `${h.host}: ${second.changed(h.host)}`);
    t.true(h.stats.roundTrips <= 2, `${h.host}: ${h.stats.roundTrips} round trips`);
    t.is(h.stats.channels, h.stats.roundTrips, 'one channel per round trip on one connection');
  }
  for (const h of first.hosts) t.true(h.stats.roundTrips <= 2, `${h.host}: ${h.stats.roundTrips} round trips`);
});

test.serial('one unreachable host: the others finish, exit code 4, recap says unreachable', async (t) => {
  const [bad, ...good] = lab.hosts;
  const inventory = labInventory({ targets: [lab.unreachable(bad!), ...good] });
  const r = await run('node', [cli, 'deploy', inventory, playbook, '--known-hosts', bad!.knownHostsFile, '--stats'], { timeoutMs: 120_000 });
  t.is(r.exitCode, 4, r.stdout + r.stderr);
  t.regex(r.stdout, new RegExp(`${bad!.name}\\s+UNREACHABLE .*ECONNREFUSED`));
  for (const h of good) t.regex(r.stdout, new RegExp(`${h.name}\\s+: ok=\\d+ changed=\\d+ unreachable=0 failed=0`));
  t.regex(r.stdout, new RegExp(`${bad!.name}\\s+: ok=0 changed=0 unreachable=1 failed=0`));
});

test.serial('a failing task names host, task, file:line, command, exit code and stderr; exit code 2', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-pb-'));
  const pb = join(dir, 'fail.yaml');
  writeFileSync(pb, '- hosts: all\n  tasks:\n    - name: fine\n      command: "true"\n    - name: breaks\n      command: "sh -c \'echo boom >&2; exit 3\'"\n    - name: never reached\n      command: "true"\n');
  const inventory = labInventory({ targets: [lab.hosts[0]!] });
  const r = await run('node', [cli, 'deploy', inventory, pb, '--known-hosts', lab.hosts[0]!.knownHostsFile], { timeoutMs: 120_000 });
  t.is(r.exitCode, 2, r.stdout + r.stderr);
  t.regex(r.stdout, /failed\s+breaks/);
  t.regex(r.stdout, /at .*fail\.yaml:5/);
  t.regex(r.stdout, /command: sh -c 'echo boom >&2; exit 3'/);
  t.regex(r.stdout, /exit code: 3/);
  t.regex(r.stdout, /boom/);
  t.notRegex(r.stdout, /never reached/);
});
