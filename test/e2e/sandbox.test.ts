import test from 'ava';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, type Lab } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from '../helpers/deploy.js';
import { waitFor } from '../helpers/wait.js';
import { createTerminals } from '../shell/terminal.js';

// The whole system from bare lab hosts: vzsb deploy of site.yaml over real SSH to two
// hypervisors (LXC inside), a balancer and a gateway; students log in with OpenSSH's ssh.
const name = `e2e-${process.pid}`;
const cli = join(import.meta.dirname, '../../bin/vzsb.js');
let lab: Lab;
let inventory: string;

test.before(async (t) => {
  // A fresh machine first builds two debootstrap trees (a minute or more each).
  t.timeout(20 * 60_000, 'creating the sandbox lab');
  await pruneStaleLabs();
  lab = await createSandboxLab(name, { ownerPid: process.pid });
  inventory = inventoryFile(lab);
});
test.after.always(async () => {
  await destroyLab(name);
});

const apply = async (options: { check?: boolean; extraVars?: Record<string, unknown> } = {}) => {
  const r = collectingReporter();
  const result = await deploy({ inventory, reporter: r.reporter, ...options });
  return { ...r, result };
};
const host = (n: string) => lab.hosts.find((h) => h.name === n)!;
const ssh = (n: string, command: string) =>
  run('ssh', ['-F', 'none', '-i', lab.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host(n).address}`, command], { timeoutMs: 60_000 });
const student = async (user: string, script: string) => run('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [script]))], { timeoutMs: 60_000 });

/** A student session that stays open until `end()`; resolves `ready` with what the script printed first. */
async function holdSession(user: string, firstOutput: string) {
  const child = spawn('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [`${firstOutput}; echo READY; sleep 300`]))], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const ready = new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('READY\n')) resolve(out.slice(0, out.indexOf('READY\n')));
    });
    void exited.then((code) => reject(new Error(`${user}'s session ended (${code}) before it was ready: ${out}`)));
  });
  return { ready, exited, end: () => child.kill('SIGTERM') };
}

test.serial('check mode predicts the first deploy; the deploy succeeds; a second deploy changes nothing', async (t) => {
  const predicted = await apply({ check: true });
  t.is(predicted.result.exitCode, 0, JSON.stringify(predicted.hosts.map((h) => h.error)));
  const first = await apply();
  t.is(first.result.exitCode, 0, JSON.stringify(first.hosts.map((h) => h.error)));
  for (const h of lab.hosts) {
    t.true(first.changed(h.name).length > 5, `${h.name}: ${first.changed(h.name)}`);
    t.deepEqual(predicted.changed(h.name), first.changed(h.name), `--check on ${h.name} predicts the real deploy`);
  }
  const second = await apply();
  t.is(second.result.exitCode, 0);
  for (const h of second.hosts) t.is(h.changed, 0, `${h.host}: ${second.changed(h.host)}`);
  for (const h of second.hosts) t.true(h.stats.roundTrips <= 3, `${h.host}: ${h.stats.roundTrips} round trips`);
  // Both hypervisors report to the balancer before students come.
  await waitFor('both hypervisors up with clean containers', async () => {
    const r = await run('node', [cli, 'pools', 'status', '--json', '-i', inventory]);
    if (r.exitCode !== 0) return undefined;
    const pools = JSON.parse(r.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
    return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) > 0) ? true : undefined;
  });
});

test.serial('a student lands as root in a container; it reaches neither the hypervisor API nor another student', async (t) => {
  const other = await holdSession('student2', 'hostname -I');
  try {
    const otherAddress = (await other.ready).trim().split(/\s+/)[0]!;
    t.regex(otherAddress, /^10\.250\.\d+\.\d+$/);
    const hyps = lab.hosts.filter((h) => h.groups?.includes('hypervisors'));
    const probes = [
      ...hyps.map((h) => `${h.address}/8750`),
      ...hyps.map((_, i) => `10.250.${i + 1}.1/8750`),
      `${host('bal1').address}/8760`,
      `${otherAddress}/22`,
    ];
    // all probes at once: a dropped SYN costs the whole timeout
    const probe = (p: string) => `(if timeout 3 bash -c '</dev/tcp/${p}' 2>/dev/null; then echo "open ${p}"; else echo "closed ${p}"; fi) &`;
    const script = ['hostname', 'id -u', ...probes.map(probe), 'wait'].join('\n');
    const r = await student('student1', script);
    t.is(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    t.regex(lines[0]!, /^vzsb-\d{4}$/, 'the container, not the gateway');
    t.is(lines[1], '0', 'root in the container');
    for (const p of probes) t.true(lines.includes(`closed ${p}`), `${p} must be closed from a student's container: ${r.stdout}`);
    // The same ports are open to those who need them: the API to the balancer.
    const fromBalancer = await ssh('bal1', hyps.map((h) => `timeout 3 bash -c '</dev/tcp/${h.address}/8750' && echo open`).join('; '));
    t.is(fromBalancer.stdout, 'open\n'.repeat(hyps.length), fromBalancer.stderr);
    const again = await student('student1', 'cat /etc/hostname');
    t.is(again.stdout.trim(), lines[0], 'a second login of the same user lands in the same container');
  } finally {
    other.end();
    await other.exited;
  }
});

test.serial('through a real terminal: a root prompt, window size and resize, the exit status comes back', async (t) => {
  // The deploy (re)started the gateway's session agent without waiting: logins go through it once it listens.
  await waitFor('the session agent on gw1', async () => ((await ssh('gw1', 'systemctl is-active vzsb-gateway-agent && test -S /run/vzsandbox/gateway/agent.sock')).exitCode === 0 ? true : undefined));
  const term = await createTerminals(`vzsb-e2e-${process.pid}`);
  try {
    await term.open('s1', ['ssh', ...(await loginArgs(name, 'student1'))], { cols: 100, rows: 30 });
    await term.waitFor('s1', /root@vzsb-\d{4}:~# $/m);
    await term.type('s1', 'stty size; tty');
    await term.waitFor('s1', /^30 100\n\/dev\/pts\/\d+$/m);
    await term.resize('s1', { cols: 120, rows: 40 });
    await term.type('s1', 'stty size');
    await term.waitFor('s1', /^40 120$/m);
    await term.type('s1', 'exit 7');
    t.is(await term.exitStatus('s1'), 7);
    const log = (await ssh('gw1', 'grep \'"event":"logout"\' /var/log/vzsandbox/gateway.log | tail -n 1')).stdout;
    t.like(JSON.parse(log) as object, { user: 'student1', status: 7, via: 'agent' });
  } finally {
    await term.close();
  }
});

test.serial('vzsb pools reset --all leaves containers in use alone, and resets them with --force', async (t) => {
  const session = await holdSession('student3', 'echo mark > /root/mark; hostname');
  const container = (await session.ready).trim();
  const reset = await run('node', [cli, 'pools', 'reset', '--all', '-i', inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  const still = await student('student3', 'cat /root/mark; hostname');
  t.is(still.stdout, `mark\n${container}\n`, 'the in-use container was not reset');
  const forced = await run('node', [cli, 'pools', 'reset', '--all', '--force', '-i', inventory]);
  t.is(forced.exitCode, 0, forced.stdout + forced.stderr);
  await session.exited; // the forced reset ended the open session
  const after = await waitFor('a fresh container for student3', async () => {
    const r = await student('student3', 'cat /root/mark 2>/dev/null || echo fresh');
    return r.exitCode === 0 ? r.stdout.trim() : undefined;
  });
  t.is(after, 'fresh', "the student's file is gone after the forced reset");
});

test.serial('20 students logging in at once get 20 distinct containers', async (t) => {
  const students = Array.from({ length: 20 }, (_, i) => `crowd${i + 1}`);
  const key = (await ssh('gw1', 'cat /home/student1/.ssh/authorized_keys')).stdout.trim();
  const added = await apply({ extraVars: { students: [...['student1', 'student2', 'student3'], ...students].map((name) => ({ name, ssh_keys: [key] })) } });
  t.is(added.result.exitCode, 0);
  const results = await Promise.all(students.map((u) => student(u, 'hostname -I')));
  for (const [i, r] of results.entries()) t.is(r.exitCode, 0, `${students[i]}: ${r.stderr}`);
  const addresses = results.map((r) => r.stdout.trim().split(/\s+/)[0]);
  t.is(new Set(addresses).size, 20, addresses.join(' '));
});

test.serial('with one hypervisor stopped, students still log in on the other', async (t) => {
  await ssh('hyp1', 'systemctl stop vzsb-hypervisor');
  try {
    for (const u of ['student1', 'student2']) {
      const r = await student(u, 'hostname -I');
      t.is(r.exitCode, 0, r.stderr);
      t.regex(r.stdout, /^10\.250\.2\./, `${u} lands on hyp2's network`);
    }
  } finally {
    await ssh('hyp1', 'systemctl start vzsb-hypervisor');
  }
});

test.serial('changing one template variable changes that file and restarts only the service that uses it', async (t) => {
  const pid = async (n: string, unit: string) => (await ssh(n, `systemctl show -p MainPID --value ${unit}`)).stdout.trim();
  const before = { hyp1: await pid('hyp1', 'vzsb-hypervisor'), bal1: await pid('bal1', 'vzsb-balancer') };
  const r = await apply({ extraVars: { pool_idle_seconds: 600 } });
  t.is(r.result.exitCode, 0);
  for (const h of ['hyp1', 'hyp2']) t.deepEqual(r.changed(h), ['daemon configuration', 'restart service'].sort(), h);
  t.deepEqual(r.changed('bal1'), []);
  t.deepEqual(r.changed('gw1'), []);
  t.regex((await ssh('hyp1', 'cat /etc/vzsandbox/hypervisor.yaml')).stdout, /idleSeconds: 600/);
  t.not(await pid('hyp1', 'vzsb-hypervisor'), before.hyp1, 'the hypervisor daemon restarted');
  t.is(await pid('bal1', 'vzsb-balancer'), before.bal1, 'the balancer did not');
});

// Network faults: a hypervisor's container bridge down for longer than the gateway's login
// timeout. The routing the playbooks set (no redirects sent or accepted, an unreachable fallback
// route) must leave nothing behind: a login right after the bridge is back succeeds.
/** The hypervisor's /healthz, asked on the host itself (Node's fetch: the hosts have no curl). */
async function healthOf(h: string): Promise<{ status: string; degraded: string[] } | undefined> {
  const r = await ssh(h, `node -e "fetch('http://127.0.0.1:8750/healthz').then((r) => r.text()).then((t) => console.log(t))"`);
  try {
    return JSON.parse(r.stdout) as { status: string; degraded: string[] };
  } catch {
    return undefined;
  }
}

test.serial('routing: the playbooks leave no redirects and an unreachable fallback route; their checks pass', async (t) => {
  for (const h of ['hyp1', 'hyp2']) {
    const r = await ssh(h, 'grep -l 1 /proc/sys/net/ipv4/conf/*/send_redirects; ip route show table main | grep ^unreachable');
    t.regex(r.stdout, /^unreachable 10\.250\.\d\.0\/24 metric 4000 *$/m, h);
    t.notRegex(r.stdout, /send_redirects/, `${h} sends no redirects`);
  }
  const gw = await ssh('gw1', 'grep -l 1 /proc/sys/net/ipv4/conf/*/accept_redirects /proc/sys/net/ipv4/conf/*/secure_redirects; echo done');
  t.is(gw.stdout, 'done\n', 'the gateway accepts no redirects');
  // With the network up every check passes (the sshd probe of a container included).
  for (const h of ['hyp1', 'hyp2']) {
    const health = await waitFor(`${h} healthy`, async () => ((await healthOf(h))?.status === 'ok' ? true : undefined), 60_000).catch(() => false);
    t.true(health, `${h}: ${JSON.stringify(await healthOf(h))}`);
  }
});

test.serial('a hypervisor bridge down longer than the login timeout: the balancer places elsewhere meanwhile, and a login right after it is back succeeds in the same container', async (t) => {
  await waitFor('both hypervisors ready', async () => {
    const r = await run('node', [cli, 'pools', 'status', '--json', '-i', inventory]);
    if (r.exitCode !== 0) return undefined;
    const pools = JSON.parse(r.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
    return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) > 0) ? true : undefined;
  });
  const first = await student('student1', 'hostname; hostname -I; echo homework > /root/work.txt');
  t.is(first.exitCode, 0, first.stderr);
  const [container, address] = first.stdout.trim().split(/\s+/);
  const hyp = address!.startsWith('10.250.1.') ? 'hyp1' : 'hyp2';
  const other = hyp === 'hyp1' ? 'hyp2' : 'hyp1';
  // An open session through the outage.
  const held = spawn('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, 'student1', ['echo READY; sleep 30; echo survived']))], { stdio: ['ignore', 'pipe', 'ignore'] });
  let heldOut = '';
  held.stdout.on('data', (d: Buffer) => (heldOut += d.toString()));
  const heldExit = new Promise<number | null>((resolve) => held.on('exit', (code) => resolve(code)));
  t.teardown(() => held.kill('SIGKILL'));
  await waitFor('the open session', async () => (heldOut.includes('READY\n') ? true : undefined), 60_000);

  // student2 must be a new student: one still holding a lease (from the tests before) goes back
  // to that container, wherever it is, rather than getting a second one.
  // (Its exit status is 2 when student2 holds no container: nothing to reset is a failed row.)
  const freed = await run('node', [cli, 'pools', 'reset', '--user', 'student2', '--force', '--wait', '-i', inventory]);
  t.not(freed.exitCode, 1, freed.stderr);

  t.is((await ssh(hyp, 'ip link set vzsbbr0 down')).exitCode, 0);
  const downAt = Date.now();
  try {
    // The hypervisor says why it takes no new students; a new one lands on the other.
    const health = await waitFor('degraded health', async () => {
      const body = await healthOf(hyp);
      return body?.status === 'degraded' ? body : undefined;
    }, 30_000);
    t.regex(health.degraded.join('; '), /bridge vzsbbr0 is down/);
    const elsewhere = await student('student2', 'hostname -I');
    t.is(elsewhere.exitCode, 0, elsewhere.stderr);
    t.true(elsewhere.stdout.startsWith(other === 'hyp1' ? '10.250.1.' : '10.250.2.'), `student2 lands on ${other}: ${elsewhere.stdout}`);
    // The gateway keeps its route: no redirect was sent or taken.
    const route = await ssh('gw1', `ip route get ${address}`);
    t.notRegex(route.stdout, /redirected/, route.stdout);
    // Longer than the login timeout (sshReadyTimeoutMs 10 s).
    const left = 15_000 - (Date.now() - downAt);
    if (left > 0) await new Promise((r) => setTimeout(r, left));
  } finally {
    await ssh(hyp, 'ip link set vzsbbr0 up');
  }
  const again = await student('student1', 'hostname; cat /root/work.txt');
  t.is(again.exitCode, 0, again.stderr);
  t.is(again.stdout, `${container}\nhomework\n`, 'a login right after recovery lands in the same container');
  const route = await ssh('gw1', `ip route get ${address}`);
  t.notRegex(route.stdout, /redirected/, route.stdout);
  t.is(await heldExit, 0, 'the session open through the outage ends normally');
  t.is(heldOut, 'READY\nsurvived\n');
});
