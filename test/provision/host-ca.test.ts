import test from 'ava';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { renderStudentSshConfig, studentSshConfigFromInventory } from '../../src/admin/ssh-config.js';
import { run } from '../../src/common/exec.js';
import { signHostKey } from '../../src/daemons/drivers/host-cert.js';
import { generateHostKey } from '../../src/daemons/drivers/ssh-hostkey.js';
import { deploy } from '../../src/provision/deploy.js';
import { hostCaPublicKey, makeHostCaKey } from '../../src/provision/host-ca.js';
import { collectingReporter } from '../helpers/deploy.js';

// The sandbox host CA on this machine: made once by deploy, read by OpenSSH's ssh-keygen,
// signing a container's host key as the LXC driver does, and the student's ssh config.

test('deploy makes the CA once: the private key in vzsb-secrets.yaml, sandbox-host-ca.pub beside the inventory', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-ca-'));
  try {
    await writeFile(join(dir, 'inventory.yaml'), 'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n');
    await writeFile(join(dir, 'pb.yaml'), `- hosts: all\n  tasks:\n    - copy: { dest: ${dir}/ca, content: '{{secret "sandbox-host-ca"}}', mode: "0600" }\n`);
    const once = async () => {
      const r = collectingReporter();
      const result = await deploy({ inventory: join(dir, 'inventory.yaml'), playbook: join(dir, 'pb.yaml'), diff: true, reporter: r.reporter });
      t.is(result.exitCode, 0, JSON.stringify(r.hosts.map((h) => h.error)));
      return r;
    };
    const first = await once();
    const pub = await readFile(join(dir, 'sandbox-host-ca.pub'), 'utf8');
    t.regex(pub, /^ssh-ed25519 AAAA[A-Za-z0-9+/=]+ vzsandbox host CA\n$/);
    const secrets = parse(await readFile(join(dir, 'vzsb-secrets.yaml'), 'utf8')) as Record<string, string>;
    t.regex(secrets['sandbox-host-ca']!, /^-----BEGIN OPENSSH PRIVATE KEY-----\n/);
    t.is(await readFile(join(dir, 'ca'), 'utf8'), secrets['sandbox-host-ca']);
    t.is((await stat(join(dir, 'ca'))).mode & 0o777, 0o600);
    // OpenSSH reads the key and derives the same public half
    const derived = await run('ssh-keygen', ['-y', '-f', join(dir, 'ca')]);
    t.is(derived.stdout.trim().split(' ').slice(0, 2).join(' '), pub.trim().split(' ').slice(0, 2).join(' '), derived.stderr);
    t.false(JSON.stringify(first.tasks).includes(secrets['sandbox-host-ca']!.split('\n')[1]!), 'the private key never reaches the output');
    // a second deploy keeps it; a lost .pub comes back
    await rm(join(dir, 'sandbox-host-ca.pub'));
    const second = await once();
    t.deepEqual(second.changed('localhost'), []);
    t.is(await readFile(join(dir, 'sandbox-host-ca.pub'), 'utf8'), pub);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("a container's host key signed as the LXC driver does: a host certificate for principal sandbox, checked by ssh-keygen", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-cert-'));
  try {
    const caKey = makeHostCaKey();
    await writeFile(join(dir, 'ca'), caKey, { mode: 0o600 });
    const key = await generateHostKey(run, dir, 'root@vzsb-0007');
    const cert = await signHostKey(run, dir, key.publicKey, 'vzsb-0007', { keyFile: join(dir, 'ca'), principals: ['sandbox'], validity: '-5m:+30d' });
    t.regex(cert, /^ssh-ed25519-cert-v01@openssh\.com AAAA/);
    await writeFile(join(dir, 'c-cert.pub'), cert + '\n');
    const shown = await run('ssh-keygen', ['-L', '-f', join(dir, 'c-cert.pub')]);
    t.regex(shown.stdout, /Type: ssh-ed25519-cert-v01@openssh\.com host certificate/);
    t.regex(shown.stdout, /Key ID: "vzsb-0007"/);
    t.regex(shown.stdout, /Principals: \n\s+sandbox\n/);
    await writeFile(join(dir, 'ca.pub'), hostCaPublicKey(caKey) + '\n');
    const caFp = (await run('ssh-keygen', ['-lf', join(dir, 'ca.pub')])).stdout.split(' ')[1]!;
    t.true(shown.stdout.includes(`Signing CA: ED25519 ${caFp}`), shown.stdout);
    // OpenSSH's own check of a known_hosts @cert-authority line against this certificate
    await writeFile(join(dir, 'known_hosts'), `@cert-authority sandbox ${hostCaPublicKey(caKey)}\n`);
    const found = await run('ssh-keygen', ['-F', 'sandbox', '-f', join(dir, 'known_hosts')]);
    t.regex(found.stdout, /@cert-authority sandbox ssh-ed25519/);
    t.is((await readdirNames(dir)).filter((n) => n.startsWith('.host')).length, 0, 'scratch directories are removed');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

async function readdirNames(dir: string): Promise<string[]> {
  const { readdir } = await import('node:fs/promises');
  return readdir(dir);
}

test('vzsb ssh-config: Host sandbox through the tunnel subsystem, the CA line; bad input is refused', async (t) => {
  const ca = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1EFcTRQR/kKm9BKGwKjb9dF9imvdYKKgmhVpU9tgd1 vzsandbox host CA';
  const text = renderStudentSshConfig({ student: 'alice', gateway: { host: 'gw.example.org', port: 2222 }, caPublicKey: ca + '\n', alias: 'sandbox' });
  t.regex(text, /^Host sandbox$/m);
  t.regex(text, /^ {4}User root$/m);
  t.regex(text, /^ {4}HostKeyAlias sandbox$/m);
  t.regex(text, /^ {4}ProxyCommand ssh -T .*-p 2222 -s alice@gw\.example\.org vzsb-tunnel$/m);
  t.regex(text, /^ {4}StrictHostKeyChecking yes$/m);
  t.true(text.includes(`\n@cert-authority sandbox ${ca}\n`));
  t.notRegex(text, /IdentityFile/);
  const withKey = renderStudentSshConfig({ student: 'alice', gateway: { host: 'fd00::5', port: 22 }, caPublicKey: ca, alias: 'sandbox', identityFile: '~/.ssh/id_class' });
  t.regex(withKey, /ProxyCommand ssh .* -i ~\/\.ssh\/id_class -p 22 -s alice@\[fd00::5\] vzsb-tunnel/);
  t.regex(withKey, /^ {4}IdentityFile ~\/\.ssh\/id_class$/m);
  t.throws(() => renderStudentSshConfig({ student: 'alice;rm', gateway: { host: 'gw', port: 22 }, caPublicKey: ca, alias: 'sandbox' }), { message: /student: expected a Unix user name/ });
  t.throws(() => renderStudentSshConfig({ student: 'alice', gateway: { host: 'gw -oProxyCommand=x', port: 22 }, caPublicKey: ca, alias: 'sandbox' }), { message: /gateway: expected a host name/ });
  t.throws(() => renderStudentSshConfig({ student: 'alice', gateway: { host: 'gw', port: 22 }, caPublicKey: 'nonsense', alias: 'sandbox' }), { message: /host CA public key/ });

  const dir = await mkdtemp(join(tmpdir(), 'vzsb-sshcfg-'));
  try {
    const inv = join(dir, 'inventory.yaml');
    await writeFile(inv, 'all:\n  children:\n    gateways:\n      hosts:\n        gw1: { ansible_host: 192.0.2.7, ansible_port: 2200 }\n        gw2: { ansible_host: 192.0.2.8, gateway_public_address: gw2.example.org, gateway_public_port: 22 }\n      vars:\n        students: [{ name: alice, ssh_keys: [] }]\n');
    await t.throwsAsync(studentSshConfigFromInventory({ inventory: inv, student: 'alice' }), { message: /sandbox-host-ca\.pub does not exist: deploy the inventory first/ });
    await writeFile(join(dir, 'sandbox-host-ca.pub'), ca + '\n');
    t.regex(await studentSshConfigFromInventory({ inventory: inv, student: 'alice' }), /-p 2200 -s alice@192\.0\.2\.7 vzsb-tunnel/);
    t.regex(await studentSshConfigFromInventory({ inventory: inv, student: 'alice', gateway: 'gw2' }), /-p 22 -s alice@gw2\.example\.org vzsb-tunnel/);
    await t.throwsAsync(studentSshConfigFromInventory({ inventory: inv, student: 'bob' }), { message: /no student "bob"/ });
    await t.throwsAsync(studentSshConfigFromInventory({ inventory: inv, student: 'alice', gateway: 'gw9' }), { message: /no gateway "gw9" \(one of gw1, gw2\)/ });
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
