import test from 'ava';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { httpCall, startCluster, userHomedAt } from '../helpers/daemons.js';

const KEY = generateEd25519('gateway').publicKey;

test('a degraded hypervisor says why in /healthz, gets no new lease from the balancer, keeps the ones it holds, and is used again once ok', async (t) => {
  const c = await startCluster(t, {
    hypervisors: [{ name: 'hypq', standby: 3, max: 4 }, { name: 'hypr', standby: 1, max: 4 }],
    balancer: { health: { intervalMs: 100, timeoutMs: 1000 } },
  });
  const lease = (user: string) => httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user, publicKey: KEY } });
  // All three have hypq as their home: it gets their new leases while it is ok.
  const [aliceName, bobName, carolName] = ['alice', 'bob', 'carol'].map((u) => userHomedAt(['hypq', 'hypr'], 'hypq', u)) as [string, string, string];
  const alice = await lease(aliceName);
  t.is(alice.body.hypervisor, 'hypq', 'its home');

  const hypq = c.hypervisor('hypq');
  (hypq.driver as MemoryDriver).setHealthProblems(['bridge vzsbbr0 is down']);
  const health = await (async () => {
    for (;;) {
      const h = await httpCall(hypq.url, 'GET', '/healthz', {});
      if (h.body.status === 'degraded') return h;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  t.is(health.status, 200);
  t.deepEqual(health.body.degraded, ['bridge vzsbbr0 is down']);
  t.false(health.body.checks.network.ok);
  t.true(health.body.checks.state.writable);
  await c.balancer.log.waitFor('hypervisor.degraded', (r) => r.hypervisor === 'hypq');

  const bob = await lease(bobName);
  t.is(bob.status, 200, bob.text);
  t.is(bob.body.hypervisor, 'hypr', 'no new lease on the degraded one, though it is his home and has clean containers');
  // The home learns where bob is (it still answers), so every balancer sends him there.
  await c.balancer.log.waitFor('lease.settled', (r) => r.user === bobName);
  t.like((await httpCall(hypq.url, 'GET', `/v1/users/${bobName}`, { token: hypq.adminToken })).body, { container: null, claim: 'hypr' });
  const again = await lease(aliceName);
  t.like(again.body, { hypervisor: 'hypq', container: alice.body.container, renewed: true });

  (hypq.driver as MemoryDriver).setHealthProblems([]);
  await c.balancer.log.waitFor('hypervisor.recovered', (r) => r.hypervisor === 'hypq');
  t.is((await lease(carolName)).body.hypervisor, 'hypq');
  t.like((await lease(bobName)).body, { hypervisor: 'hypr', container: bob.body.container, renewed: true });
});
