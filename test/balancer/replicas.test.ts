import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { balancerConfigYaml, BALANCER_TOKENS, httpCall, startTestBalancer, startTestHypervisor, type TestHypervisor } from '../helpers/daemons.js';
import { runCli } from '../hypervisor/daemon-process.js';

/**
 * Balancer replicas agree without a store of their own: the hypervisors settle placement (a
 * user's home grants the lease or says where it lives), so a student reaching two balancers at
 * once gets one container, also when one balancer stalls.
 */
const KEY = generateEd25519('gateway').publicKey;

interface Answer {
  status: number;
  body: any;
  text: string;
}

const lease = (url: string, user: string): Promise<Answer> => httpCall(url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user, publicKey: KEY } });

/** Every lease the hypervisors hold, by user; fails the test on a user with two. */
async function leasesByUser(t: { fail(m: string): void }, hyps: readonly TestHypervisor[]): Promise<Map<string, string>> {
  const held = new Map<string, string>();
  for (const h of hyps) {
    const res = await httpCall(h.url, 'GET', '/v1/leases', { token: h.adminToken });
    for (const l of res.body.leases as { user: string; container: string }[]) {
      if (held.has(l.user)) t.fail(`${l.user} holds two leases: ${held.get(l.user)} and ${h.name}/${l.container}`);
      held.set(l.user, `${h.name}/${l.container}`);
    }
  }
  return held;
}

/** Both answers of each student name the same container, and the hypervisors hold exactly that one. */
async function checkOneEach(t: { is(a: unknown, b: unknown, m?: string): void; fail(m: string): void }, hyps: readonly TestHypervisor[], users: string[], answers: [Answer, Answer][]) {
  for (const [i, [a, b]] of answers.entries()) {
    t.is(a.status, 200, `${users[i]} via the first: ${a.text}`);
    t.is(b.status, 200, `${users[i]} via the second: ${b.text}`);
    t.is(`${a.body.hypervisor}/${a.body.container}`, `${b.body.hypervisor}/${b.body.container}`, `${users[i]}: one container whichever balancer`);
  }
  const held = await leasesByUser(t, hyps);
  t.is(held.size, users.length, 'one lease per student, no more');
  for (const [i, u] of users.entries()) t.is(held.get(u), `${answers[i]![0].body.hypervisor}/${answers[i]![0].body.container}`, u);
}

// Small pools: homes fill up and send students on, so claims race too.
const pools = (prefix: string) => [
  { name: `${prefix}1`, standby: 3, max: 12, latencyMs: 2 },
  { name: `${prefix}2`, standby: 3, max: 12, latencyMs: 2 },
  { name: `${prefix}3`, standby: 3, max: 12, latencyMs: 2 },
];

test('30 students whose first logins reach both balancers at once get exactly one container each', async (t) => {
  const hyps = await Promise.all(pools('rep').map((spec) => startTestHypervisor(t, spec)));
  const [one, two] = await Promise.all([startTestBalancer(t, hyps), startTestBalancer(t, hyps)]);
  const users = Array.from({ length: 30 }, (_, i) => `pupil${String(i + 1).padStart(2, '0')}`);
  const answers = await Promise.all(users.map((u) => Promise.all([lease(one.url, u), lease(two.url, u)])));
  await checkOneEach(t, hyps, users, answers);
  // Later logins, through either balancer, keep landing in the same container.
  const again = await Promise.all(users.map((u, i) => lease(i % 2 ? one.url : two.url, u)));
  for (const [i, a] of again.entries()) t.like(a.body, { hypervisor: answers[i]![0].body.hypervisor, container: answers[i]![0].body.container, renewed: true });
});

test('the same with one balancer stalled (its process stopped) for 3 s while the logins arrive', async (t) => {
  const hyps = await Promise.all(pools('stl').map((spec) => startTestHypervisor(t, spec)));
  const one = await startTestBalancer(t, hyps);
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-replicas-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  // Health timeouts shorter than the stall (2 s < 3 s): without the lag handling its polls would
  // all time out when it runs again.
  await writeFile(join(dir, 'balancer.yaml'), balancerConfigYaml(hyps).replace('health: {intervalMs: 300, timeoutMs: 5000}', 'health: {intervalMs: 300, timeoutMs: 2000}'));
  const daemon = runCli(['balancer', '--config', join(dir, 'balancer.yaml')]);
  t.teardown(() => {
    daemon.child.kill('SIGCONT');
    daemon.child.kill('SIGKILL');
  });
  const listening = await daemon.waitForLog('daemon.listening');
  const twoUrl = `http://127.0.0.1:${listening.port}`;
  const started = await daemon.waitForLog('balancer.started');
  t.true((started.hypervisors as { up: boolean }[]).every((h) => h.up), JSON.stringify(started));

  const users = Array.from({ length: 30 }, (_, i) => `stall${String(i + 1).padStart(2, '0')}`);
  const pending = users.map((u) => Promise.all([lease(one.url, u), lease(twoUrl, u)]));
  // Its event loop stops mid-burst (as a long GC or a CPU-starved host would stop it); when it
  // runs again every timer of its own is late, health polls and lease calls alike.
  await new Promise((r) => setTimeout(r, 30));
  daemon.child.kill('SIGSTOP');
  await new Promise((r) => setTimeout(r, 3000));
  daemon.child.kill('SIGCONT');
  const answers = await Promise.all(pending);
  await checkOneEach(t, hyps, users, answers);
  // Its own lag made no hypervisor look down to it.
  await httpCall(twoUrl, 'GET', '/healthz');
  t.deepEqual(daemon.logs.filter((l) => l.event === 'hypervisor.down'), []);
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
});

test('1,000 students in waves of 50 over 20 hypervisors through two balancers: all granted, no container to two users', async (t) => {
  const hyps = await Promise.all(Array.from({ length: 20 }, (_, i) => startTestHypervisor(t, { name: `wave${String(i + 1).padStart(2, '0')}`, standby: 10, max: 60, latencyMs: 1 })));
  const balancers = await Promise.all([startTestBalancer(t, hyps), startTestBalancer(t, hyps)]);
  const places = new Map<string, string>();
  for (let wave = 0; wave < 20; wave++) {
    const users = Array.from({ length: 50 }, (_, i) => `s${String(wave * 50 + i + 1).padStart(4, '0')}`);
    const answers = await Promise.all(users.map((u, i) => lease(balancers[i % 2]!.url, u)));
    for (const [i, a] of answers.entries()) {
      t.is(a.status, 200, `${users[i]}: ${a.text}`);
      places.set(users[i]!, `${a.body.hypervisor}/${a.body.container}`);
    }
  }
  t.is(places.size, 1000);
  t.is(new Set(places.values()).size, 1000, 'no container given to two users');
  // Requests per lease from the hypervisors' own counters (health polls left out).
  let requests = 0;
  for (const h of hyps) {
    const text = (await httpCall(h.url, 'GET', '/metrics', { token: h.adminToken })).text;
    for (const m of text.matchAll(/^vzsb_hypervisor_http_requests_total\{[^}]*route="([^"]+)"[^}]*\} (\d+)$/gm)) {
      if (m[1] !== '/healthz' && m[1] !== '/metrics') requests += Number(m[2]);
    }
  }
  // A few homes fill up and send students on (two or three requests for those); most are one.
  t.true(requests / 1000 <= 3, `${requests} hypervisor requests for 1000 leases`);
  const held = await leasesByUser(t, hyps);
  t.is(held.size, 1000);
  for (const [u, p] of places) if (held.get(u) !== p) t.fail(`${u}: answered ${p}, held ${held.get(u)}`);
});
