import test from 'ava';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { releaseLease, requestLease } from '../../src/shell/balancer-client.js';
import { startCluster, startTestBalancer } from '../helpers/daemons.js';

/** The gateway's own lease client against real balancers: the contract the login shell depends on. */
test('the gateway client gets a lease through the second balancer when the first is down, and releases it', async (t) => {
  const c = await startCluster(t, { hypervisors: [{ name: 'gwa', standby: 1, max: 3 }, { name: 'gwb', standby: 2, max: 3 }] });
  const second = await startTestBalancer(t, c.hypervisors);
  await c.balancer.stop();
  const options = { balancers: [c.balancer.url, second.url], token: c.tokens.lease, connectTimeoutMs: 3000, requestTimeoutMs: 20_000 };
  const key = generateEd25519('one-time').publicKey;
  const lease = await requestLease(options, 'kate', key, 30_000);
  t.like(lease, { user: 'kate', hypervisor: 'gwb', balancer: second.url, sshPort: 22 });
  t.regex(lease.container, /^gwb-\d{4}$/);
  t.regex(lease.hostKeyFingerprint, /^SHA256:/);
  t.is(await releaseLease(options, 'kate', second.url, 10_000), second.url);
  t.like(await second.log.waitFor('lease.released'), { user: 'kate', hypervisor: 'gwb', container: lease.container });
  // Full everywhere: the gateway reports no capacity (final, not retried).
  const users = ['u1', 'u2', 'u3', 'u4', 'u5', 'u6'];
  for (const u of users) await requestLease(options, u, key, 30_000);
  const err = await t.throwsAsync(requestLease(options, 'late', key, 30_000));
  t.is((err as { code?: string }).code, 'E_NO_CAPACITY');
});
