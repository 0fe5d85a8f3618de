import test from 'ava';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { httpCall, startCluster } from '../helpers/daemons.js';

const KEY = generateEd25519('gateway').publicKey;

test('a degraded hypervisor says why in /healthz, gets no new lease from the balancer, keeps the ones it holds, and is used again once ok', async (t) => {
  const c = await startCluster(t, {
    hypervisors: [{ name: 'hypq', standby: 3, max: 4 }, { name: 'hypr', standby: 1, max: 4 }],
    balancer: { health: { intervalMs: 100, timeoutMs: 1000 } },
  });
  const lease = (user: string) => httpCall(c.balancer.url, 'POST', '/v1/leases', { token: c.tokens.lease, body: { user, publicKey: KEY } });
  const alice = await lease('alice');
  t.is(alice.body.hypervisor, 'hypq', 'most clean containers first');

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

  const bob = await lease('bob');
  t.is(bob.status, 200, bob.text);
  t.is(bob.body.hypervisor, 'hypr', 'no new lease on the degraded one, though it has the most clean containers');
  const again = await lease('alice');
  t.like(again.body, { hypervisor: 'hypq', container: alice.body.container, renewed: true });

  (hypq.driver as MemoryDriver).setHealthProblems([]);
  await c.balancer.log.waitFor('hypervisor.recovered', (r) => r.hypervisor === 'hypq');
  t.is((await lease('carol')).body.hypervisor, 'hypq');
});
