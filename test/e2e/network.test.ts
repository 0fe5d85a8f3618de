import test from 'ava';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { guardTableName, hostVethName } from '../../src/daemons/drivers/bridge-guard.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, studentKeyFile, type Lab } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from '../helpers/deploy.js';
import { waitFor } from '../helpers/wait.js';
import { forgedSessionScript, impersonateScript } from '../helpers/spoof.js';

// Sessions and the network, attacked by students on a deployed sandbox: a neighbour's address
// and MAC taken over, a fake ssh session left behind, clients that vanish, and the maximum
// session length. vzsb deploy of site.yaml to a lab of two hypervisors, a balancer, a gateway.
const name = `e2enet-${process.pid}`;
const cli = join(import.meta.dirname, '../../bin/vzsb.js');
const BRIDGE = 'vzsbbr0'; // the playbook's container_bridge
const STUDENTS = ['student1', 'student2', 'student3', 'student4', 'student5', 'student6'];
let lab: Lab;
let inventory: string;
let studentKey = '';

test.before(async (t) => {
  t.timeout(20 * 60_000, 'creating the sandbox lab');
  await pruneStaleLabs();
  lab = await createSandboxLab(name, { ownerPid: process.pid });
  inventory = inventoryFile(lab);
  studentKey = (await run('cat', [`${studentKeyFile(lab)}.pub`])).stdout.trim();
});
test.after.always(async () => {
  await destroyLab(name);
});

const apply = async (extraVars: Record<string, unknown> = {}) => {
  const r = collectingReporter();
  const students = STUDENTS.map((s) => ({ name: s, ssh_keys: [studentKey] }));
  const result = await deploy({ inventory, reporter: r.reporter, extraVars: { students, ...extraVars } });
  return { ...r, result };
};
const host = (n: string) => lab.hosts.find((h) => h.name === n)!;
const ssh = (n: string, command: string) =>
  run('ssh', ['-F', 'none', '-i', lab.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host(n).address}`, command], { timeoutMs: 60_000 });
const student = async (user: string, script: string) => run('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [script]))], { timeoutMs: 60_000 });

/** The local TCP port of process `pid`'s connection to `address`:22. */
async function localPortOf(pid: number, address: string): Promise<number> {
  const r = await run('ss', ['-Htnp', 'state', 'established', 'dst', `${address}:22`]);
  const line = r.stdout.split('\n').find((l) => l.includes(`pid=${pid},`));
  const m = line ? /\S+:(\d+)\s+\S+:22\b/.exec(line) : null;
  if (!m) throw new Error(`no connection of pid ${pid} to ${address}:22 in: ${r.stdout}`);
  return Number(m[1]);
}

/** A session that prints "tick" once a second (or, quiet, nothing) after what `first` printed; open until killed. */
async function holdSession(user: string, first: string, options: { quiet?: boolean } = {}) {
  const rest = options.quiet ? 'sleep 3600' : 'while sleep 1; do echo tick; done';
  const child: ChildProcess = spawn('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [`${first}; echo READY; ${rest}`]))], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  let done = false;
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  void exited.then(() => (done = true));
  const ready = waitFor(`${user}'s session`, async () => {
    if (done) throw new Error(`${user}'s session ended before it was ready: ${out} ${err}`);
    return out.includes('READY\n') ? out.slice(0, out.indexOf('READY\n')) : undefined;
  });
  ready.catch(() => {});
  return {
    child,
    ready,
    exited,
    get ended() {
      return done;
    },
    ticks: () => out.split('\n').filter((l) => l === 'tick').length,
    stderr: () => err,
  };
}

interface SessionRow {
  user: string;
  container: string;
  releasedAt: string | null;
}
async function sessions(): Promise<SessionRow[]> {
  const r = await run('node', [cli, 'sessions', '--json', '-i', inventory]);
  if (r.exitCode !== 0) throw new Error(`vzsb sessions: ${r.stderr}`);
  return (JSON.parse(r.stdout) as { sessions: SessionRow[] }).sessions;
}

async function poolsUp(minClean: number): Promise<true | undefined> {
  const r = await run('node', [cli, 'pools', 'status', '--json', '-i', inventory]);
  if (r.exitCode !== 0) return undefined;
  const pools = JSON.parse(r.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
  return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) >= minClean) ? true : undefined;
}

/** Packets the bridge guard of a hypervisor dropped, by rule comment. */
async function guardDrops(hyp: string): Promise<Record<string, number>> {
  const r = await ssh(hyp, `nft list table bridge ${guardTableName(BRIDGE)} | grep 'counter packets'`);
  const counts: Record<string, number> = {};
  for (const m of r.stdout.matchAll(/counter packets (\d+) bytes \d+ drop comment "([^"]+)"/g)) counts[m[2]!] = (counts[m[2]!] ?? 0) + Number(m[1]);
  return counts;
}

test.serial('deploy: both hypervisors load their bridge guard; the gateway shows students no host banner', async (t) => {
  const first = await apply();
  t.is(first.result.exitCode, 0, JSON.stringify(first.hosts.map((h) => h.error)));
  await waitFor('both hypervisors up with clean containers', () => poolsUp(3), 180_000);
  for (const h of ['hyp1', 'hyp2']) t.regex((await ssh(h, `nft list chain bridge ${guardTableName(BRIDGE)} prerouting`)).stdout, /hook prerouting priority dstnat/);
  const gw = await ssh('gw1', 'wc -c < /etc/motd; test -x /etc/update-motd.d/10-uname && echo uname-on || echo uname-off; sshd -T | grep -E "^(printmotd|printlastlog|persourcemaxstartups) "');
  for (const line of ['0', 'uname-off', 'printmotd no', 'printlastlog no', 'persourcemaxstartups 60']) t.true(gw.stdout.split('\n').includes(line), `${line} in ${gw.stdout}`);
  // sshd -T does not print Debian's own option: the version string the gateway greets with shows it.
  const greeting = await run('bash', ['-c', `exec 3<>/dev/tcp/${host('gw1').address}/22; head -c 64 <&3`], { timeoutMs: 10_000 });
  t.regex(greeting.stdout, /^SSH-2\.0-OpenSSH_[\d.p]+\r?\n/, 'no "Debian-..." suffix');
  // An interactive terminal login, as a student sees it: the sandbox's lines, then the container's.
  const login = await run('ssh', ['-tt', '-o', 'BatchMode=yes', ...(await loginArgs(name, 'student6'))], { input: 'exit\n', timeoutMs: 60_000 });
  t.is(login.exitCode, 0, login.stderr);
  t.notRegex(login.stdout + login.stderr, /Linux gw1|Debian GNU|Last login|programs included/);
});

test.serial("a student who takes a neighbour's address and MAC and sends ARP and IP from it changes nothing for the neighbour", async (t) => {
  // One hypervisor only, so that attacker and victim share a bridge.
  await ssh('hyp2', 'systemctl stop vzsb-hypervisor');
  try {
    const victim = await holdSession('student1', 'hostname; hostname -I; cat /sys/class/net/eth0/address');
    const [container, ipLine, mac] = (await victim.ready).trim().split('\n').map((l) => l.trim());
    const victimIp = ipLine!.split(/\s+/)[0]!;
    t.regex(victimIp, /^10\.250\.1\./, 'on hyp1');
    const port = hostVethName({ prefix: 'vzsb-', bridge: BRIDGE }, container!);
    const fdb = async () => (await ssh('hyp1', `bridge fdb show br ${BRIDGE} | grep -i '^${mac} ' | grep -v permanent`)).stdout.trim().split(/\s+/)[2];
    const neigh = async () => /lladdr (\S+)/.exec((await ssh('hyp1', `ip -4 neigh show ${victimIp} dev ${BRIDGE}`)).stdout)?.[1];
    t.is(await neigh(), mac);
    t.is(await fdb(), port);
    const hostMac = (await ssh('hyp1', `cat /sys/class/net/${BRIDGE}/address`)).stdout.trim();
    for (const [attacker, useVictimMac] of [['student2', false], ['student3', true]] as const) {
      const before = await guardDrops('hyp1');
      const own = await student(attacker, 'hostname -I; cat /sys/class/net/eth0/address');
      t.is(own.exitCode, 0, own.stderr);
      const [ownIp, ownMac] = own.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/)[0]!);
      t.regex(ownIp!, /^10\.250\.1\./);
      const script = impersonateScript({ victimIp, victimMac: useVictimMac ? mac! : ownMac!, prefixLength: 24, host: '10.250.1.1', hostMac });
      // Detached: the attack takes the attacker's own address away, and with it this session.
      const started = await student(attacker, `cat > /root/attack.sh <<'ATTACK'\nsleep 1\n${script}\nATTACK\nsetsid sh /root/attack.sh >/root/attack.log 2>&1 < /dev/null & echo started`);
      t.is(started.stdout.trim(), 'started', started.stderr);
      const key = useVictimMac ? "a MAC not the port's own" : "ARP claiming an address or MAC not the port's own";
      await waitFor(`the guard dropping ${attacker}'s frames`, async () => (((await guardDrops('hyp1'))[key] ?? 0) > (before[key] ?? 0) + 2 ? true : undefined), 30_000);
      t.is(await neigh(), mac, `hyp1's neighbour entry for ${victimIp} after ${attacker}'s attack`);
      t.is(await fdb(), port, `hyp1's bridge knows the victim's MAC on the victim's port only, after ${attacker}'s attack`);
    }
    const ticks = victim.ticks();
    await waitFor('the victim session going on', async () => (victim.ticks() >= ticks + 3 ? true : undefined), 15_000);
    t.false(victim.ended, `the victim's session is untouched: ${victim.stderr()}`);
    const next = await student('student1', 'hostname');
    t.is(next.exitCode, 0, next.stderr);
    t.is(next.stdout.trim(), container, "the victim's next login reaches its own container");
    victim.child.kill('SIGTERM');
    await victim.exited;
  } finally {
    await ssh('hyp2', 'systemctl start vzsb-hypervisor');
  }
  await waitFor('hyp2 back', () => poolsUp(1), 120_000);
  // The attackers' containers are theirs to break: reset everything so later tests start clean.
  const reset = await run('node', [cli, 'pools', 'reset', '--all', '--force', '--wait', '-i', inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  await waitFor('both hypervisors ready again', () => poolsUp(3), 120_000);
});

test.serial('a process titled "sshd: root@notty" and a connection "from the gateway" inside the container keep nothing: pools reset without --force resets it', async (t) => {
  const gw = host('gw1').address;
  const ownIp = (await student('student4', "hostname -I | cut -d' ' -f1")).stdout.trim();
  t.regex(ownIp, /^10\.250\.\d+\.\d+$/);
  const fake = forgedSessionScript({ gatewayIp: gw, ownIp, seconds: 3600 });
  const script = [
    'echo mark > /root/mark',
    `cat > /root/fake.sh <<'FAKE'\nsleep 1\n${fake}\nFAKE`,
    "setsid nohup perl -e '$0 = q(sshd: root@notty); sleep 3600' >/dev/null 2>&1 < /dev/null &",
    'setsid sh /root/fake.sh >/root/fake.log 2>&1 < /dev/null &',
    'hostname',
  ].join('\n');
  const r = await student('student4', script);
  t.is(r.exitCode, 0, r.stderr);
  const container = r.stdout.trim();
  t.regex(container, /^vzsb-\d{4}$/);
  await waitFor('the logout released the lease', async () => ((await sessions()).find((s) => s.user === 'student4')?.releasedAt ? true : undefined));
  const reset = await run('node', [cli, 'pools', 'reset', '--all', '--wait', '-i', inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  t.false(new RegExp(`${container}.*in use`).test(reset.stdout), reset.stdout);
  t.false((await sessions()).some((s) => s.user === 'student4'), 'the lease ended with the reset');
  const after = await waitFor('a fresh container for student4', async () => {
    const again = await student('student4', 'cat /root/mark 2>/dev/null || echo fresh');
    return again.exitCode === 0 ? again.stdout.trim() : undefined;
  });
  t.is(after, 'fresh', 'the container with the fake session was reset');
});

test.serial('vanished clients release their session: a killed one within seconds, a silent one within about a minute, one cut off in the middle of output within about two', async (t) => {
  const killed = await holdSession('student5', 'hostname');
  const silent = await holdSession('student6', 'hostname', { quiet: true });
  const cut = await holdSession('student3', 'hostname');
  await Promise.all([killed.ready, silent.ready, cut.ready]);
  // The laptop of `cut` drops off the network: nothing of its connection passes either way
  // (this machine is the client: its own output and input hooks, for that one local port).
  const port = await localPortOf(cut.child.pid!, host('gw1').address);
  const table = `vzsbe2ecut_${process.pid}`;
  t.teardown(() => run('/usr/sbin/nft', ['delete', 'table', 'inet', table]).then(() => undefined));
  const rules = `table inet ${table} {\n chain o { type filter hook output priority 0; tcp sport ${port} drop; }\n chain i { type filter hook input priority 0; tcp dport ${port} drop; }\n}\n`;
  const loaded = await run('/usr/sbin/nft', ['-f', '-'], { input: rules });
  t.is(loaded.exitCode, 0, loaded.stderr);
  const t0 = Date.now();
  killed.child.kill('SIGKILL');
  silent.child.kill('SIGSTOP'); // stopped: its machine still acknowledges TCP, but ssh answers no probe
  try {
    const released = async (user: string) => {
      const row = (await sessions()).find((s) => s.user === user);
      return row === undefined || row.releasedAt !== null ? Date.now() - t0 : undefined;
    };
    const explain = async (user: string) =>
      `${JSON.stringify((await sessions()).filter((s) => s.user === user))}\n${(await ssh('gw1', `grep '"user":"${user}"' /var/log/vzsandbox/gateway.log | tail -n 5`)).stdout}`;
    const within = (user: string, ms: number) =>
      waitFor(`${user} released`, () => released(user), ms).catch(async (err: Error) => {
        throw new Error(`${err.message}: ${await explain(user)}`);
      });
    const [killedMs, silentMs, cutMs] = await Promise.all([within('student5', 60_000), within('student6', 120_000), within('student3', 180_000)]);
    t.log(`released after: killed ${killedMs} ms, silent ${silentMs} ms, cut off ${cutMs} ms`);
    t.true(killedMs < 30_000, `killed: ${killedMs} ms`);
    // ClientAlive 10 s x (2 + 1) probes, 20 s apart on sshd 9.2; then the login client sees its sshd gone.
    t.true(silentMs < 90_000, `silent: ${silentMs} ms`);
    // tcp_retries2 = 8: about 100 s of retransmissions.
    t.true(cutMs < 150_000, `cut off: ${cutMs} ms`);
    const log = (await ssh('gw1', 'journalctl -u ssh --no-pager | grep -c "Timeout, client not responding"')).stdout.trim();
    t.not(log, '0', 'the silent one was ended by sshd\'s probes');
  } finally {
    silent.child.kill('SIGKILL');
    silent.child.kill('SIGCONT');
    cut.child.kill('SIGKILL');
  }
});

test.serial('a session over the maximum length is warned, then ended, and its lease reclaimed', async (t) => {
  const changed = await apply({ pool_max_session_seconds: 40 });
  t.is(changed.result.exitCode, 0);
  await waitFor('hypervisors back', () => poolsUp(1), 120_000);
  const started = Date.now();
  const held = await holdSession('student2', 'hostname'); // a student without a lease (reset above)
  await held.ready;
  const code = await held.exited;
  const ms = Date.now() - started;
  t.is(code, 255);
  t.regex(held.stderr(), /\[vzsandbox\] This session ends in \d+ seconds .*maximum session length/);
  t.regex(held.stderr(), /\[vzsandbox\] The maximum session length is reached/);
  t.true(ms >= 30_000 && ms < 70_000, `${ms} ms`);
  await waitFor('the lease released', async () => ((await sessions()).some((s) => s.user === 'student2' && s.releasedAt === null) ? undefined : true), 60_000);
  const log = (await ssh('gw1', "grep '\"event\":\"session.limit\"' /var/log/vzsandbox/gateway.log | tail -n 1")).stdout;
  t.regex(log, /student2/);
});
