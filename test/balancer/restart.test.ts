import test from 'ava';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { requestLease, type BalancerClientOptions } from '../../src/shell/balancer-client.js';
import { newSessionId } from '../../src/shell/session-id.js';
import { BALANCER_TOKENS, httpCall, startTestBalancer, startTestHypervisor, userHomedAt, type TestBalancer, type TestHypervisor } from '../helpers/daemons.js';

/**
 * One container per student through a hypervisor restart: while the hypervisor holding a
 * student's lease is down, their login waits for it (the gateway client retries E_HOLDER_DOWN
 * and says so), and gets the same container once it is back; past the balancer's bound the
 * student gets a new one, and the old lease ends when its hypervisor returns. Never two leases.
 */
const key = () => generateEd25519('gateway').publicKey;

function gateway(balancers: TestBalancer[], waits: string[]): BalancerClientOptions {
  return { balancers: balancers.map((b) => b.url), token: BALANCER_TOKENS.lease, connectTimeoutMs: 2000, requestTimeoutMs: 20_000, onWait: (code) => waits.push(code) };
}

async function leasesOf(hyps: readonly TestHypervisor[], user: string): Promise<string[]> {
  const found: string[] = [];
  for (const h of hyps) {
    const res = await httpCall(h.url, 'GET', '/v1/leases', { token: h.adminToken });
    for (const l of (res.body.leases ?? []) as { user: string; container: string }[]) if (l.user === user) found.push(`${h.name}/${l.container}`);
  }
  return found;
}

test('a student whose hypervisor restarts waits for it and gets the same container, with their work', async (t) => {
  const hyps = await Promise.all(['rsa1', 'rsa2'].map((name) => startTestHypervisor(t, { name, standby: 2, max: 4 })));
  const balancer = await startTestBalancer(t, hyps, { lease: { deadlineMs: 15_000, attemptTimeoutMs: 5000, lookupTimeoutMs: 2000, holderWaitMs: 20_000 } });
  const student = userHomedAt(['rsa1', 'rsa2'], 'rsa1', 'pia');
  const waits: string[] = [];
  const gw = gateway([balancer], waits);
  const first = await requestLease(gw, student, key(), 20_000, { session: newSessionId(1, 'gw') });
  t.is(first.hypervisor, 'rsa1');
  (hyps[0]!.driver as MemoryDriver).writeFile(first.container, '/root/notes.txt', 'half done\n');

  await hyps[0]!.stop();
  const again = requestLease(gw, student, key(), 30_000, { session: newSessionId(2, 'gw') });
  // The login waits: the balancer says the holder is down, the gateway client retries and tells.
  await balancer.log.waitFor('lease.refused', (r) => r.user === student && r.code === 'E_HOLDER_DOWN');
  const until = Date.now() + 10_000;
  while (waits.length === 0 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
  t.deepEqual([...new Set(waits)], ['E_HOLDER_DOWN']);
  await hyps[0]!.restart();
  const back = await again;
  t.like(back, { hypervisor: 'rsa1', container: first.container, movedFrom: undefined });
  t.is((await hyps[0]!.driver.exec(first.container, ['cat', '/root/notes.txt'])).stdout, 'half done\n');
  t.deepEqual(await leasesOf(hyps, student), [`rsa1/${first.container}`], 'one lease');
});

test('past the wait a new container is given, the old lease ends when its hypervisor returns, and never two leases remain', async (t) => {
  const hyps = await Promise.all(['rsb1', 'rsb2'].map((name) => startTestHypervisor(t, { name, standby: 2, max: 4 })));
  const overrides = { lease: { deadlineMs: 15_000, attemptTimeoutMs: 5000, lookupTimeoutMs: 2000, holderWaitMs: 1000 } };
  const [one, two] = await Promise.all([startTestBalancer(t, hyps, overrides), startTestBalancer(t, hyps, overrides)]);
  const student = userHomedAt(['rsb1', 'rsb2'], 'rsb1', 'quinn');
  const waits: string[] = [];
  const first = await requestLease(gateway([one, two], waits), student, key(), 20_000, { session: newSessionId(1, 'gw') });
  t.is(first.hypervisor, 'rsb1');

  await hyps[0]!.stop();
  const started = performance.now();
  const moved = await requestLease(gateway([one, two], waits), student, key(), 30_000, { session: newSessionId(2, 'gw') });
  t.true(performance.now() - started >= 900, 'it waited for the holder first');
  t.true(waits.includes('E_HOLDER_DOWN'));
  t.like(moved, { hypervisor: 'rsb2', movedFrom: 'rsb1' });
  t.not(moved.container, undefined);

  // The old hypervisor comes back with the old lease in its state: a balancer ends it and the
  // home (rsb1) points at the new one. Until then the polls send the student to the new one.
  await hyps[0]!.restart();
  await Promise.race([one.log.waitFor('lease.settled', (r) => r.user === student), two.log.waitFor('lease.settled', (r) => r.user === student)]);
  await hyps[0]!.daemon.pool.settled();
  t.deepEqual(await leasesOf(hyps, student), [`rsb2/${moved.container}`], 'only the new lease is left');
  const superseded = hyps[0]!.log.records.find((r) => r.event === 'lease.superseded' && r.user === student);
  t.like(superseded, { container: first.container, by: 'rsb2' });
  // Every balancer, and the home itself, now sends the student to the new container.
  for (const b of [one, two]) {
    const res = await httpCall(b.url, 'POST', '/v1/leases', { token: BALANCER_TOKENS.lease, body: { user: student, publicKey: key() } });
    t.like(res.body, { hypervisor: 'rsb2', container: moved.container, renewed: true });
  }
  t.like((await httpCall(hyps[0]!.url, 'GET', `/v1/users/${student}`, { token: hyps[0]!.adminToken })).body, { container: null, claim: 'rsb2' });
  t.deepEqual(await leasesOf(hyps, student), [`rsb2/${moved.container}`]);
});
