import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { labInventoryYaml } from '../../src/lab/inventory.js';
import { readBanner } from '../../src/lab/ready.js';
import { sshArgs, useLab } from '../helpers/lab.js';

const fixture = useLab(test, { hosts: 4 });

// Runs before the concurrent tests (ava runs serial tests first), so host4 is back up for them.
test.serial('a stopped host stops answering and answers again after start', async (t) => {
  const host = fixture.host('host4');
  await fixture.stopHost('host4');
  t.is(await readBanner(host.address, host.port, 1000), undefined);
  await fixture.startHost('host4');
  t.regex((await readBanner(host.address, host.port, 5000)) ?? '', /^SSH-2\.0-OpenSSH/);
});

test('four hosts come up on distinct addresses of the lab subnet', (t) => {
  const { hosts, lab } = fixture;
  t.is(hosts.length, 4);
  t.deepEqual(hosts.map((h) => h.name), ['host1', 'host2', 'host3', 'host4']);
  t.is(new Set(hosts.map((h) => h.address)).size, 4);
  const prefix = lab.subnet.replace(/\.0\/24$/, '.');
  for (const h of hosts) {
    t.true(h.address.startsWith(prefix), `${h.address} in ${lab.subnet}`);
    t.not(h.address, lab.gateway);
    t.is(h.port, 22);
  }
});

test('every host answers ssh as root, is itself, and boots systemd', async (t) => {
  await Promise.all(
    fixture.hosts.map(async (host) => {
      const r = await fixture.ssh(host, 'hostname; id -u; cat /proc/1/comm; systemctl is-system-running --wait');
      t.is(r.exitCode, 0, `${host.name}: ${r.stderr}`);
      t.deepEqual(r.stdout.trim().split('\n'), [host.name, '0', 'systemd', 'running'], host.name);
    }),
  );
});

test('hosts have what the deploy targets need: python3, node, sshd, sudo, nft, lxc', async (t) => {
  const r = await fixture.ssh(fixture.host('host1'), 'python3 -c "print(1+1)" && node -e "console.log(3)" && command -v sudo nft lxc-start debootstrap crontab >/dev/null && echo ok');
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['2', '3', 'ok']);
});

test('clients verify host keys: a wrong key in known_hosts is refused', async (t) => {
  const [h1, h2] = fixture.hosts as [typeof fixture.hosts[0], typeof fixture.hosts[0]];
  const known = await readFile(h1.knownHostsFile, 'utf8');
  const h2Key = known.split('\n').find((l) => l.startsWith(`${h2.address},`))!.split(' ').slice(1).join(' ');
  const wrong = join(tmpdir(), `lab-known-${randomBytes(4).toString('hex')}`);
  await writeFile(wrong, `${h1.address} ${h2Key}\n`);
  t.teardown(() => run('rm', ['-f', wrong]));
  const r = await run('ssh', [...sshArgs({ ...h1, knownHostsFile: wrong }), 'true']);
  t.is(r.exitCode, 255);
  t.regex(r.stderr, /HOST IDENTIFICATION HAS CHANGED|Host key verification failed/);
  // and the lab's own known_hosts has a distinct key per host
  const keys = known.trim().split('\n').map((l) => l.split(' ')[2]);
  t.is(new Set(keys).size, 4);
  // no host keeps a key of the shared root filesystem
  const files = await fixture.ssh(h1, 'ls /etc/ssh | grep ^ssh_host_');
  t.deepEqual(files.stdout.trim().split('\n'), ['ssh_host_ed25519_key', 'ssh_host_ed25519_key.pub']);
});

test('hosts have separate filesystems', async (t) => {
  const token = randomBytes(8).toString('hex');
  const [writer, ...others] = fixture.hosts;
  const w = await fixture.ssh(writer!, `echo ${token} > /root/lab-marker-${token}`);
  t.is(w.exitCode, 0, w.stderr);
  t.is((await fixture.ssh(writer!, `cat /root/lab-marker-${token}`)).stdout.trim(), token);
  for (const other of others) {
    const r = await fixture.ssh(other, `test -e /root/lab-marker-${token} && echo present || echo absent`);
    t.is(r.stdout.trim(), 'absent', other.name);
  }
});

test('hosts reach each other by name (gateway -> balancer -> hypervisor traffic)', async (t) => {
  const [from, ...to] = fixture.hosts;
  const probe = to.map((h) => `timeout 5 bash -c 'exec 3<>/dev/tcp/${h.name}/22; head -1 <&3' | cut -c1-8`).join('; ');
  const r = await fixture.ssh(from!, probe);
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), to.map(() => 'SSH-2.0-'));
});

test('admin logs in with the lab key and becomes root through sudo', async (t) => {
  const host = fixture.host('host2');
  const r = await fixture.ssh(host, 'id -un; sudo -n id -u; cat /etc/shadow >/dev/null 2>&1 && echo readable || echo denied; sudo -n head -c0 /etc/shadow && echo sudo-ok', { user: 'admin' });
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['admin', '0', 'denied', 'sudo-ok']);
});

test('an unreachable host (wrong port) is refused', async (t) => {
  const broken = fixture.unreachable(fixture.host('host3'));
  t.is(await readBanner(broken.address, broken.port, 1000), undefined);
  const r = await fixture.ssh(broken, 'true');
  t.is(r.exitCode, 255);
  t.regex(r.stderr, /Connection refused/);
});

test('ansible reaches every host through the lab inventory, verifying host keys', async (t) => {
  const inventory = join(tmpdir(), `lab-inventory-${randomBytes(4).toString('hex')}.yaml`);
  await writeFile(inventory, labInventoryYaml(fixture.lab));
  t.teardown(() => run('rm', ['-f', inventory]));
  const env = { ...process.env, ANSIBLE_HOST_KEY_CHECKING: 'True', ANSIBLE_NOCOLOR: '1', ANSIBLE_LOCAL_TEMP: tmpdir() };
  const r = await run('ansible', ['-i', inventory, 'lab', '-e', 'ansible_user=admin', '--become', '-m', 'shell', '-a', 'echo $SUDO_USER $(id -u)', '-o'], { env, timeoutMs: 120_000 });
  t.is(r.exitCode, 0, r.stdout + r.stderr);
  for (const h of fixture.hosts) t.regex(r.stdout, new RegExp(`^${h.name} \\| CHANGED \\| rc=0 \\| \\(stdout\\) admin 0$`, 'm'));
});
