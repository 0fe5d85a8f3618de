import test from 'ava';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import type { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { releaseSession, requestLease, type BalancerClientOptions } from '../../src/shell/balancer-client.js';
import { newSessionId } from '../../src/shell/session-id.js';
import { BALANCER_TOKENS, httpCall, startTestBalancer, startTestHypervisor, type TestHypervisor } from '../helpers/daemons.js';

/**
 * A student's sessions are counted where the lease lives, whatever gateway and balancer they
 * came through: two gateways (each its own client options and session ids, as two gateway
 * hosts would have) in front of two balancers in front of the same hypervisors. The sessions
 * are requested with the gateway's own client (src/shell/balancer-client.ts), as a login does.
 */
const key = () => generateEd25519('gateway').publicKey;

async function cluster(t: Parameters<typeof startTestHypervisor>[0], prefix: string) {
  const hyps = await Promise.all([1, 2].map((n) => startTestHypervisor(t, { name: `${prefix}${n}`, standby: 2, max: 6, graceSeconds: 0 })));
  const balancers = await Promise.all([startTestBalancer(t, hyps), startTestBalancer(t, hyps)]);
  const gateway = (i: number): BalancerClientOptions => ({
    // Each gateway lists both balancers, its own first.
    balancers: i === 0 ? [balancers[0]!.url, balancers[1]!.url] : [balancers[1]!.url, balancers[0]!.url],
    token: BALANCER_TOKENS.lease,
    connectTimeoutMs: 2000,
    requestTimeoutMs: 20_000,
  });
  return { hyps, gateways: [gateway(0), gateway(1)] as const };
}

async function leaseOf(hyps: readonly TestHypervisor[], user: string): Promise<{ hypervisor: TestHypervisor; container: string } | undefined> {
  for (const h of hyps) {
    const l = ((await httpCall(h.url, 'GET', '/v1/leases', { token: h.adminToken })).body.leases as { user: string; container: string }[]).find((x) => x.user === user);
    if (l) return { hypervisor: h, container: l.container };
  }
  return undefined;
}

test('a student logged in through both gateways keeps the container when one session ends (grace 0); the lease ends with the last', async (t) => {
  const { hyps, gateways } = await cluster(t, 'two');
  const [one, two] = [newSessionId(101, 'gw1'), newSessionId(202, 'gw2')];
  const [k1, k2] = [key(), key()];
  const first = await requestLease(gateways[0], 'nina', k1, 20_000, { session: one, maxSessions: 8 });
  const second = await requestLease(gateways[1], 'nina', k2, 20_000, { session: two, maxSessions: 8 });
  t.is(second.container, first.container);
  t.is(second.hypervisor, first.hypervisor);
  const held = (await leaseOf(hyps, 'nina'))!;
  const driver = held.hypervisor.driver as MemoryDriver;
  t.deepEqual(driver.authorizedKeysOf(held.container).sort(), [k1, k2].sort(), 'both sessions\' keys are accepted');

  // The session on the first gateway ends: the lease and the container stay for the second.
  const ended = await releaseSession(gateways[0], 'nina', first.balancer, 10_000, one);
  t.like(ended, { released: false, sessions: 1 });
  t.deepEqual(driver.authorizedKeysOf(held.container), [k2], 'the ended session\'s key is gone');
  driver.writeFile(held.container, '/root/work.txt', 'unsaved work\n');
  await held.hypervisor.daemon.pool.settled();
  const still = await leaseOf(hyps, 'nina');
  t.is(still?.container, held.container, 'not reset under the open session');
  // Its next login, through either gateway, is the same container with the work in it.
  const three = newSessionId(103, 'gw1');
  const again = await requestLease(gateways[0], 'nina', key(), 20_000, { session: three, maxSessions: 8 });
  t.is(again.container, held.container);
  t.is((await driver.exec(held.container, ['cat', '/root/work.txt'])).stdout, 'unsaved work\n');

  // The remaining sessions end (through the other gateway and balancer too): the lease with the last.
  t.like(await releaseSession(gateways[1], 'nina', undefined, 10_000, two), { released: false, sessions: 1 });
  t.like(await releaseSession(gateways[1], 'nina', undefined, 10_000, three), { released: true, sessions: 0 });
  await held.hypervisor.daemon.pool.settled();
  t.is(await leaseOf(hyps, 'nina'), undefined, 'released, and (grace 0) reset');
});

test('the per-user session limit counts the sessions of both gateways', async (t) => {
  const { hyps, gateways } = await cluster(t, 'lim');
  const ids = new Map<number, string>();
  const ask = (g: 0 | 1, pid: number) => {
    ids.set(pid, newSessionId(pid, `gw${g + 1}`));
    return requestLease(gateways[g], 'omar', key(), 20_000, { session: ids.get(pid), maxSessions: 3 });
  };
  const a = await ask(0, 1);
  const first = ids.get(1)!;
  await ask(1, 2);
  await ask(0, 3);
  // A fourth, on either gateway, is over the limit of 3 (each gateway alone has only one or two).
  const refused = await t.throwsAsync(ask(1, 4));
  t.is((refused as { code?: string }).code, 'E_TOO_MANY');
  t.regex(String((refused as { details?: string }).details), /3 sessions open \(at most 3\)/);
  const held = (await leaseOf(hyps, 'omar'))!;
  t.is(held.container, a.container);
  t.is((held.hypervisor.driver as MemoryDriver).authorizedKeysOf(held.container).length, 3, 'the refused login added no key');
  // One ends: room for one more, on the other gateway.
  await releaseSession(gateways[0], 'omar', a.balancer, 10_000, first);
  const fourth = await ask(1, 5);
  t.is(fourth.container, a.container);
});
