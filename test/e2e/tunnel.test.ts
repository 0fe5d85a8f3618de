import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createConnection, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run, type CommandResult } from '../../src/common/exec.js';
import { ensureRootfs } from '../../src/common/rootfs.js';
import { BASE_PACKAGES } from '../../src/daemons/drivers/lxc-config.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, studentKeyFile, type Lab } from '../../src/lab/index.js';
import { generateKeyPair } from '../../src/lab/ssh-keys.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from '../helpers/deploy.js';
import { waitFor } from '../helpers/wait.js';

// Full OpenSSH to the sandbox: a deployed lab (two hypervisors, a balancer, a gateway) and
// OpenSSH's own client as the student, with the ~/.ssh/config block `vzsb ssh-config` prints
// (ProxyCommand through the gateway's vzsb-tunnel subsystem) and only the host CA's line in
// known_hosts. student2 has a key of their own; the others share the lab's student key.
const name = `e2e-tun-${process.pid}`;
const cli = join(import.meta.dirname, '../../bin/vzsb.js');
let lab: Lab;
let inventory: string;
let dir: string;
let student2Key: string;

test.before(async (t) => {
  t.timeout(25 * 60_000, 'creating and deploying the lab');
  await pruneStaleLabs();
  // rsync in the containers: the hypervisors build their base from this machine's cache (lab
  // hosts reach no mirror), so the tree with rsync is made here first.
  await ensureRootfs({ packages: [...BASE_PACKAGES, 'rsync'] });
  lab = await createSandboxLab(name, { ownerPid: process.pid });
  inventory = inventoryFile(lab);
  dir = await mkdtemp(join(tmpdir(), 'vzsb-tunnel-'));
  student2Key = join(dir, 'student2_ed25519');
  const shared = (await readFile(`${studentKeyFile(lab)}.pub`, 'utf8')).trim();
  const own = (await generateKeyPair(student2Key, 'student2@laptop', run)).publicKey;
  const students = [
    { name: 'student1', ssh_keys: [shared] },
    { name: 'student2', ssh_keys: [own] },
    { name: 'student3', ssh_keys: [shared] },
  ];
  const r = collectingReporter();
  const result = await deploy({ inventory, reporter: r.reporter, extraVars: { students, container_packages: ['rsync'] } });
  t.is(result.exitCode, 0, JSON.stringify(r.hosts.map((h) => h.error)));
  await waitFor('both hypervisors with clean containers', async () => {
    const s = await run('node', [cli, 'pools', 'status', '--json', '-i', inventory]);
    if (s.exitCode !== 0) return undefined;
    const pools = JSON.parse(s.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
    return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) > 0) ? true : undefined;
  }, 10 * 60_000);
  await waitFor('the session agent on gw1', async () => ((await admin('gw1', 'systemctl is-active vzsb-gateway-agent && test -S /run/vzsandbox/gateway/agent.sock')).exitCode === 0 ? true : undefined));
});
test.after.always(async () => {
  await destroyLab(name);
  if (dir) await rm(dir, { recursive: true, force: true });
});

const host = (n: string) => lab.hosts.find((h) => h.name === n)!;
const admin = (n: string, command: string) =>
  run('ssh', ['-F', 'none', '-i', lab.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host(n).address}`, command], { timeoutMs: 60_000 });

interface Student {
  config: string;
  knownHosts: string;
  /** OpenSSH options for every ssh, scp and rsync of this student: their config, their known_hosts only. */
  opts: string[];
}

/**
 * The student's laptop: `vzsb ssh-config` output as ~/.ssh/config and the CA line alone as
 * known_hosts. The inner ssh (the ProxyCommand's, to the gateway) is pointed at the lab's
 * known_hosts for the gateway's own key, as a student's would be at theirs.
 */
async function laptop(user: string, keyFile: string): Promise<Student> {
  const printed = await run('node', [cli, 'ssh-config', '-i', inventory, user, '--identity-file', keyFile]);
  if (printed.exitCode !== 0) throw new Error(`ssh-config: ${printed.stderr}`);
  const caLine = printed.stdout.split('\n').find((l) => l.startsWith('@cert-authority sandbox '));
  if (!caLine) throw new Error(`no CA line in: ${printed.stdout}`);
  const config = join(dir, `${user}.config`);
  const knownHosts = join(dir, `${user}.known_hosts`);
  const inner = `ProxyCommand ssh -F none -o UserKnownHostsFile=${lab.knownHostsFile} -o GlobalKnownHostsFile=/dev/null -o StrictHostKeyChecking=yes -o BatchMode=yes -o IdentitiesOnly=yes -o LogLevel=ERROR `;
  // what goes into ~/.ssh/config is what comes before the known_hosts part
  const block = printed.stdout.slice(0, printed.stdout.indexOf('# ~/.ssh/known_hosts'));
  await writeFile(config, block.replace('ProxyCommand ssh ', inner));
  await writeFile(knownHosts, caLine + '\n');
  const opts = ['-F', config, '-o', `UserKnownHostsFile=${knownHosts}`, '-o', 'GlobalKnownHostsFile=/dev/null', '-o', 'BatchMode=yes', '-o', 'IdentitiesOnly=yes', '-o', 'ConnectTimeout=20'];
  return { config, knownHosts, opts };
}

const sandbox = (s: Student, args: string[], input?: string): Promise<CommandResult> => run('ssh', [...s.opts, ...args], { timeoutMs: 60_000, input });

/** A session that runs until end() (SIGTERM to the local ssh) or finish() (end of its input: the remote command ends by itself). */
function hold(command: string, args: string[], marker = 'READY'): { ready: Promise<string>; exited: Promise<number | null>; child: ChildProcess; end(): void; finish(): void } {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes(`${marker}\n`)) resolve(out.slice(0, out.indexOf(`${marker}\n`)));
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    void exited.then((code) => reject(new Error(`${args.join(' ')} ended (${code}) before ${marker}: ${out} ${err}`)));
  });
  ready.catch(() => {});
  return { ready, exited, child, end: () => child.kill('SIGTERM'), finish: () => child.stdin!.end() };
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

/** A listener inside the container on 127.0.0.1:port that answers every connection with one line (perl-base is in every Debian). */
const LISTENER = (port: number, line: string) =>
  `perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(LocalAddr => "127.0.0.1:${port}", Listen => 5, ReuseAddr => 1) or die "listen: $!"; $| = 1; print "READY\\n"; while ($c = $s->accept) { print $c "${line}\\n"; close $c }'`;

test.serial('ssh sandbox: the container, verified by the host CA alone (StrictHostKeyChecking=yes), and again after a reset', async (t) => {
  const s = await laptop('student1', studentKeyFile(lab));
  const first = await sandbox(s, ['-o', 'LogLevel=INFO', 'sandbox', 'hostname; id -u; echo mark > /root/mark']);
  t.is(first.exitCode, 0, first.stderr);
  const [hostname, uid] = first.stdout.trim().split('\n');
  t.regex(hostname!, /^vzsb-\d{4}$/);
  t.is(uid, '0');
  t.notRegex(first.stderr, /WARNING|REMOTE HOST IDENTIFICATION|Permanently added/i, first.stderr);
  // The key the student's client accepted is a certificate for "sandbox" from the CA.
  const verbose = await sandbox(s, ['-v', 'sandbox', 'true']);
  t.regex(verbose.stderr, /Server host certificate: ssh-ed25519-cert-v01@openssh\.com/, verbose.stderr);
  t.regex(verbose.stderr, /Host 'sandbox' is known and matches the ED25519-CERT host certificate/, verbose.stderr);
  const before = await readFile(s.knownHosts, 'utf8');

  const reset = await run('node', [cli, 'pools', 'reset', '--all', '--force', '-i', inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  const after = await waitFor('a fresh container for student1', async () => {
    const r = await sandbox(s, ['-o', 'LogLevel=INFO', 'sandbox', 'cat /root/mark 2>/dev/null || echo fresh; cat /etc/ssh/ssh_host_ed25519_key.pub']);
    return r.exitCode === 0 ? r : undefined;
  });
  t.is(after.stdout.split('\n')[0], 'fresh', "a new container: the student's file is gone");
  t.notRegex(after.stderr, /WARNING|REMOTE HOST IDENTIFICATION|Permanently added/i, after.stderr);
  t.is(await readFile(s.knownHosts, 'utf8'), before, 'known_hosts still holds the CA line only');
  // The keys went in once per container: the second tunnel skipped it, the new container got them again.
  const logins = (await admin('gw1', `grep '"event":"login"' /var/log/vzsandbox/gateway.log | grep '"user":"student1"' | grep '"request":"tunnel"'`)).stdout.trim().split('\n');
  const keys = logins.map((l) => (JSON.parse(l) as { keys: string }).keys);
  t.deepEqual([keys[0], keys[1], keys[keys.length - 1]], ['installed', 'known', 'installed'], keys.join(' '));
});

test.serial("the host CA's private key is on the hypervisors only, 0600 root; its public half is beside the inventory", async (t) => {
  for (const h of ['hyp1', 'hyp2']) t.is((await admin(h, 'stat -c "%a %U %G" /etc/vzsandbox/sandbox-host-ca')).stdout.trim(), '600 root root', h);
  for (const h of ['gw1', 'bal1']) t.is((await admin(h, 'test -e /etc/vzsandbox/sandbox-host-ca; echo $?')).stdout.trim(), '1', h);
  const pub = (await readFile(join(dirname(inventory), 'sandbox-host-ca.pub'), 'utf8')).trim();
  const derived = (await admin('hyp1', 'ssh-keygen -y -f /etc/vzsandbox/sandbox-host-ca')).stdout.trim();
  t.is(derived.split(' ').slice(0, 2).join(' '), pub.split(' ').slice(0, 2).join(' '));
  const printed = await run('node', [cli, 'ssh-config', '-i', inventory, 'student1']);
  t.true(printed.stdout.includes(`@cert-authority sandbox ${pub}\n`));
});

test.serial('ssh -W and ssh -L reach a listener on the container\'s own loopback', async (t) => {
  const s = await laptop('student1', studentKeyFile(lab));
  const port = 8000 + (process.pid % 1000);
  const listener = hold('ssh', [...s.opts, 'sandbox', LISTENER(port, 'hello from the container')]);
  try {
    await listener.ready;
    const w = await sandbox(s, ['-W', `127.0.0.1:${port}`, 'sandbox']);
    t.is(w.stdout, 'hello from the container\n', w.stderr);

    const local = await freePort();
    const forward = hold('ssh', [...s.opts, '-o', 'ExitOnForwardFailure=yes', '-L', `127.0.0.1:${local}:127.0.0.1:${port}`, 'sandbox', 'echo READY; sleep 300']);
    try {
      await forward.ready;
      const line = await new Promise<string>((resolve, reject) => {
        let got = '';
        const c = createConnection({ host: '127.0.0.1', port: local });
        c.on('data', (d) => (got += d.toString()));
        c.on('end', () => resolve(got));
        c.on('error', reject);
      });
      t.is(line, 'hello from the container\n');
    } finally {
      forward.end();
      await forward.exited;
    }
  } finally {
    listener.end();
    await listener.exited;
  }
});

test.serial('ssh -A: the student\'s agent is forwarded into the container', async (t) => {
  const s = await laptop('student1', studentKeyFile(lab));
  const sock = join(dir, 'agent.sock');
  const agent = await run('ssh-agent', ['-a', sock]);
  t.is(agent.exitCode, 0, agent.stderr);
  const agentPid = /SSH_AGENT_PID=(\d+)/.exec(agent.stdout)?.[1];
  try {
    const env = { ...process.env, SSH_AUTH_SOCK: sock };
    t.is((await run('ssh-add', [student2Key], { env })).exitCode, 0);
    const fp = (await run('ssh-keygen', ['-lf', `${student2Key}.pub`])).stdout.split(' ')[1]!;
    const r = await run('ssh', [...s.opts, '-A', 'sandbox', 'test -S "$SSH_AUTH_SOCK" && ssh-add -l'], { env, timeoutMs: 60_000 });
    t.is(r.exitCode, 0, r.stderr);
    t.true(r.stdout.includes(fp), r.stdout);
    const without = await run('ssh', [...s.opts, 'sandbox', 'ssh-add -l; echo "status $?"'], { env, timeoutMs: 60_000 });
    t.regex(without.stdout, /status 2/, 'no agent without -A');
  } finally {
    if (agentPid) process.kill(Number(agentPid), 'SIGTERM');
  }
});

test.serial('scp and rsync copy a file both ways', async (t) => {
  const s = await laptop('student1', studentKeyFile(lab));
  const local = join(dir, 'payload.bin');
  const payload = Buffer.alloc(3 * 1024 * 1024 + 17);
  for (let i = 0; i < payload.length; i++) payload[i] = (i * 131 + (i >> 9)) & 0xff;
  await writeFile(local, payload);
  const up = await run('scp', [...s.opts, '-q', local, 'sandbox:/root/up.bin'], { timeoutMs: 120_000 });
  t.is(up.exitCode, 0, up.stderr);
  const down = await run('scp', [...s.opts, '-q', 'sandbox:/root/up.bin', join(dir, 'down.bin')], { timeoutMs: 120_000 });
  t.is(down.exitCode, 0, down.stderr);
  t.true((await readFile(join(dir, 'down.bin'))).equals(payload), 'scp: the same bytes back');

  const rsh = ['ssh', ...s.opts].join(' ');
  const rup = await run('rsync', ['-a', '-e', rsh, local, 'sandbox:/root/rsync.bin'], { timeoutMs: 120_000 });
  t.is(rup.exitCode, 0, rup.stderr);
  const sum = await sandbox(s, ['sandbox', 'sha256sum /root/rsync.bin /root/up.bin']);
  const sums = sum.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
  t.is(sums.length, 2);
  t.is(sums[0], sums[1], sum.stdout);
  const rdown = await run('rsync', ['-a', '-e', rsh, 'sandbox:/root/rsync.bin', join(dir, 'rsync-down.bin')], { timeoutMs: 120_000 });
  t.is(rdown.exitCode, 0, rdown.stderr);
  t.true((await readFile(join(dir, 'rsync-down.bin'))).equals(payload), 'rsync: the same bytes back');
});

test.serial("a second student's tunnel leads to their own container only; the gateway forwards nothing", async (t) => {
  const one = await laptop('student1', studentKeyFile(lab));
  const two = await laptop('student2', student2Key);
  const a = await sandbox(one, ['sandbox', 'hostname -I; hostname']);
  const b = await sandbox(two, ['sandbox', 'hostname -I; hostname']);
  t.is(a.exitCode, 0, a.stderr);
  t.is(b.exitCode, 0, b.stderr);
  // Container names repeat across hypervisors (vzsb-0001 on each): the address tells them apart.
  const aAddress = a.stdout.split(/\s+/)[0]!;
  t.not(b.stdout.split(/\s+/)[0], aAddress, "student2's tunnel is not student1's container");
  // student1's key opens student1's container, not student2's: the keys are each student's own.
  // (student2's own key to the gateway, student1's to the container)
  const swappedConfig = join(dir, 'student2-swapped.config');
  await writeFile(swappedConfig, (await readFile(two.config, 'utf8')).replace(`    IdentityFile ${student2Key}\n`, `    IdentityFile ${studentKeyFile(lab)}\n`));
  const swapped = await run('ssh', [...two.opts.map((o) => (o === two.config ? swappedConfig : o)), 'sandbox', 'hostname'], { timeoutMs: 60_000 });
  t.is(swapped.exitCode, 255, swapped.stdout);
  t.regex(swapped.stderr, /Permission denied \(publickey\)/);
  // The gateway's own sshd forwards nothing for a student, to any address.
  const gw = host('gw1');
  const base = ['-F', 'none', '-i', student2Key, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-p', String(gw.port)];
  const direct = await run('ssh', [...base, '-W', `${aAddress}:22`, `student2@${gw.address}`], { timeoutMs: 30_000, input: '' });
  t.not(direct.exitCode, 0);
  t.notRegex(direct.stdout, /^SSH-2\.0/, "no byte of student1's sshd");
  t.regex(direct.stderr, /administratively prohibited|forwarding/i, direct.stderr);
  // The subsystem takes no target: a tunnel with anything after it is a command in the student's own container.
  const named = await run('ssh', [...base, `student2@${gw.address}`, `vzsb-tunnel ${aAddress}`], { timeoutMs: 30_000 });
  t.regex(named.stderr + named.stdout, /vzsb-tunnel: (command )?not found/, named.stdout + named.stderr);
});

test.serial('a tunnel and a login of the same student share one container, released when both end', async (t) => {
  const s = await laptop('student3', studentKeyFile(lab));
  // One after the other: two sessions leasing at the same instant race for the lease's one-time key.
  // Each ends when its input does (an ssh killed on the laptop leaves a command without a
  // terminal running on the gateway until it ends: sshd hangs up only a terminal).
  const login = hold('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, 'student3', ['hostname; echo READY; cat >/dev/null']))]);
  await login.ready;
  const tunnel = hold('ssh', [...s.opts, 'sandbox', 'hostname; echo READY; cat >/dev/null']);
  const lastLogout = async () => {
    const line = (await admin('gw1', 'grep \'"event":"logout"\' /var/log/vzsandbox/gateway.log | grep \'"user":"student3"\' | tail -n 1')).stdout.trim();
    return line ? (JSON.parse(line) as { request?: string; released: unknown; pid: number }) : undefined;
  };
  try {
    const [viaLogin, viaTunnel] = await Promise.all([login.ready, tunnel.ready]);
    t.regex(viaLogin.trim(), /^vzsb-\d{4}$/);
    t.is(viaTunnel.trim(), viaLogin.trim(), 'the same container');
    const sessions = JSON.parse((await run('node', [cli, 'sessions', '--json', '-i', inventory])).stdout) as { sessions: Array<{ user: string; container: string }> };
    t.is(sessions.sessions.filter((x) => x.user === 'student3').length, 1, 'one lease');
    login.finish();
    t.is(await login.exited, 0);
    const first = await waitFor('the login\'s logout', async () => {
      const l = await lastLogout();
      return l && l.released !== undefined ? l : undefined;
    });
    t.is(first.released, 'kept for 1 other session(s)');
    tunnel.finish();
    t.is(await tunnel.exited, 0);
    const second = await waitFor('the tunnel\'s logout', async () => {
      const l = await lastLogout();
      return l && l.pid !== first.pid ? l : undefined;
    });
    t.is(second.released, true);
  } finally {
    login.end();
    tunnel.end();
  }
});

test.serial('time to exit: ssh sandbox true through the tunnel beside a plain login (median of 20)', async (t) => {
  const s = await laptop('student1', studentKeyFile(lab));
  const time = async (args: string[]) => {
    const ms: number[] = [];
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      const r = await run('ssh', args, { timeoutMs: 60_000 });
      ms.push(performance.now() - t0);
      if (r.exitCode !== 0) throw new Error(`${args.join(' ')}: ${r.stderr}`);
    }
    ms.sort((x, y) => x - y);
    return { median: Math.round((ms[9]! + ms[10]!) / 2), min: Math.round(ms[0]!), max: Math.round(ms[19]!) };
  };
  const login = await time(['-o', 'BatchMode=yes', ...(await loginArgs(name, 'student1', ['true']))]);
  const tunnel = await time([...s.opts, 'sandbox', 'true']);
  t.log(`ssh student1@gw1 true: median ${login.median} ms (min ${login.min}, max ${login.max})`);
  t.log(`ssh sandbox true (tunnel): median ${tunnel.median} ms (min ${tunnel.min}, max ${tunnel.max})`);
  // The gateway's part, from its log: session start to the relay for the last 20 of each.
  const lines = (await admin('gw1', `grep '"event":"login"' /var/log/vzsandbox/gateway.log | grep '"user":"student1"' | tail -n 40`)).stdout.trim().split('\n');
  const gatewayMs = (kind: string) => {
    const ms = lines.map((l) => JSON.parse(l) as { request: string; connectMs: number }).filter((l) => l.request === kind).map((l) => l.connectMs).sort((x, y) => x - y);
    return ms.length ? ms[Math.floor(ms.length / 2)] : undefined;
  };
  t.log(`gateway, session start to relay (median): login (exec) ${gatewayMs('exec')} ms, tunnel ${gatewayMs('tunnel')} ms`);
  t.true(tunnel.median < 5000, `${tunnel.median} ms`);
});
