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
    // a command without creates/removes is skipped in check mode, as in Ansible (the handler "record restart")
    t.deepEqual(predicted.changed(h.name), first.changed(h.name).filter((n) => n !== 'record restart'), `check mode on ${h.name} predicts the real run`);
  }
  // the handler ran exactly once, on every host
  for (const h of lab.hosts) {
    const r = await lab.ssh(h, 'wc -l < /srv/vzsb-test/restarts; cat /srv/vzsb-test/motd');
    t.is(r.exitCode, 0, r.stderr);
    t.regex(r.stdout, /^1\nWelcome to .* \(test host\)\n\* one\n\* two\n$/);
  }
  // What each operation was for is really so on the hosts.
  const state = await lab.ssh(
    lab.hosts[0]!,
    [
      'dpkg-query -W -f=\'${Status}\' less 2>/dev/null | grep -q "install ok installed" && echo less-installed || echo less-removed',
      'grep -qx /usr/local/bin/vzsb-shell /etc/shells && echo shell-listed',
      'id -nG student1',
      'systemctl is-active vzsb-test; systemctl is-enabled vzsb-test',
      'grep -c "^\\*/15 \\* \\* \\* \\* root /bin/true" /etc/cron.d/vzsb-test',
      'nft list table inet vzsbtest | grep -c "tcp dport 9 drop"',
      'sysctl -n net.ipv4.ip_forward',
    ].join('; '),
  );
  t.is(state.stdout, 'less-removed\nshell-listed\nstudent1 vzsb-students\nactive\nenabled\n1\n1\n1\n', state.stderr);
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

test.serial('a restart notified in a failed run is still pending on the host and runs in the next run', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-pb-'));
  const pb = join(dir, 'pending.yaml');
  writeFileSync(
    pb,
    [
      '- hosts: all',
      '  tasks:',
      '    - name: config changes',
      '      copy: { dest: /etc/vzsb-pending-test.conf, content: "v1\\n" }',
      '      notify: restart thing',
      '    - name: needs a flag file',
      '      command: test -e /etc/vzsb-flag',
      '      changed_when: false',
      '  handlers:',
      '    - name: restart thing',
      '      command: "sh -c \'echo restarted >> /var/tmp/vzsb-restarts\'"',
      '',
    ].join('\n'),
  );
  const host = lab.hosts[1]!;
  const inventory = labInventory({ targets: [host] });
  const once = collectingReporter();
  const failed = await deploy({ inventory, playbook: pb, reporter: once.reporter, ssh: { knownHostsFiles: [host.knownHostsFile] } });
  t.is(failed.exitCode, 2);
  t.is((await lab.ssh(host, 'cat /var/tmp/vzsb-restarts 2>/dev/null | wc -l')).stdout.trim(), '0', 'no restart after the failure');
  await lab.ssh(host, 'touch /etc/vzsb-flag');
  const again = collectingReporter();
  const fixed = await deploy({ inventory, playbook: pb, reporter: again.reporter, ssh: { knownHostsFiles: [host.knownHostsFile] } });
  t.is(fixed.exitCode, 0);
  t.deepEqual(again.changed(host.name), ['restart thing'], 'only the pending handler changed');
  t.is((await lab.ssh(host, 'cat /var/tmp/vzsb-restarts')).stdout, 'restarted\n');
  const third = collectingReporter();
  await deploy({ inventory, playbook: pb, reporter: third.reporter, ssh: { knownHostsFiles: [host.knownHostsFile] } });
  t.deepEqual(third.changed(host.name), [], 'the handler is no longer pending');
});

test.serial('become through sudo as a non-root login user', async (t) => {
  const host = { ...lab.hosts[2]!, user: 'admin' };
  const inventory = labInventory({ targets: [host] }, { ansible_become: true });
  const r = collectingReporter();
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const pb = join(mkdtempSync(join(tmpdir(), 'vzsb-pb-')), 'become.yaml');
  writeFileSync(pb, '- hosts: all\n  tasks:\n    - copy: { dest: /root/by-become, content: "x\\n", mode: "0600" }\n');
  const result = await deploy({ inventory, playbook: pb, reporter: r.reporter, ssh: { knownHostsFiles: [host.knownHostsFile] } });
  t.is(result.exitCode, 0, JSON.stringify(r.hosts));
  t.is((await lab.ssh(lab.hosts[2]!, 'stat -c %U:%a /root/by-become')).stdout.trim(), 'root:600');
});

test.serial('an unknown host key is refused unless new keys are accepted; a changed key is always refused', async (t) => {
  const { mkdtempSync, writeFileSync, readFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const host = lab.hosts[3]!;
  const inventory = labInventory({ targets: [host] });
  const pb = join(mkdtempSync(join(tmpdir(), 'vzsb-pb-')), 'noop.yaml');
  writeFileSync(pb, '- hosts: all\n  tasks:\n    - file: { path: /tmp, state: directory }\n');
  const empty = join(mkdtempSync(join(tmpdir(), 'vzsb-kh-')), 'known_hosts');
  writeFileSync(empty, '');
  const refuse = collectingReporter();
  const refused = await deploy({ inventory, playbook: pb, reporter: refuse.reporter, ssh: { knownHostsFiles: [empty], knownHostsWriteFile: empty } });
  t.is(refused.exitCode, 4);
  t.regex(refuse.hosts[0]!.error ?? '', /not in known_hosts.*--accept-new-host-keys/);
  const accept = collectingReporter();
  const accepted = await deploy({ inventory, playbook: pb, reporter: accept.reporter, ssh: { knownHostsFiles: [empty], knownHostsWriteFile: empty, acceptNewHostKeys: true } });
  t.is(accepted.exitCode, 0);
  t.regex(readFileSync(empty, 'utf8'), new RegExp(`^${host.address.replace(/\./g, '\\.')} ssh-ed25519 `));
  // Same address, another key: refused even with accept-new.
  writeFileSync(empty, `${host.address} ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSz1bMUhzcRkAKd2oVgHd3C0D3u3TUkFgydLkz0Z5RO\n`);
  const mitm = collectingReporter();
  const mismatch = await deploy({ inventory, playbook: pb, reporter: mitm.reporter, ssh: { knownHostsFiles: [empty], knownHostsWriteFile: empty, acceptNewHostKeys: true } });
  t.is(mismatch.exitCode, 4);
  t.regex(mitm.hosts[0]!.error ?? '', /HOST KEY MISMATCH/);
});

test.serial('ProxyJump from ~/.ssh/config: the connection to a host goes through the jump host', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { connectSsh } = await import('../../src/provision/connectors/ssh.js');
  const [jump, target] = [lab.hosts[0]!, lab.hosts[1]!];
  const config = join(mkdtempSync(join(tmpdir(), 'vzsb-sshcfg-')), 'config');
  writeFileSync(config, `Host target\n  HostName ${target.address}\n  User root\n  IdentityFile ${target.keyFile}\n  ProxyJump root@${jump.address}\n`);
  const conn = await connectSsh({ name: 'target', host: 'target', port: undefined, user: undefined, privateKeyFile: undefined }, { sshConfigFile: config, knownHostsFiles: [target.knownHostsFile] });
  try {
    const r = await conn.run('hostname; echo $SSH_CONNECTION', { become: false });
    const [name, connection] = r.stdout.trim().split('\n');
    t.is(name, target.name);
    t.is(connection!.split(' ')[0], jump.address, 'the target sees the jump host as the client');
  } finally {
    await conn.close();
  }
});
