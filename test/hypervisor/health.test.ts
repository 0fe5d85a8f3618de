import test from 'ava';
import { once } from 'node:events';
import { createServer, type Server } from 'node:net';
import type { ContainerDriver } from '../../src/daemons/drivers/types.js';
import { HypervisorHealth, SSH_PROBE_FAILURES } from '../../src/daemons/hypervisor/health.js';
import type { Pool } from '../../src/daemons/hypervisor/pool.js';

// The sshd probe of /healthz, against real TCP listeners on loopback addresses standing in for
// containers: 127.0.0.2 answers with an SSH banner, 127.0.0.3 refuses (its sshd stopped).
interface Box {
  id: string;
  state: 'clean' | 'leased';
  address: string;
}

async function bannerServer(): Promise<{ server: Server; port: number }> {
  const server = createServer((sock) => sock.end('SSH-2.0-OpenSSH_9.2p1\r\n'));
  server.listen(0, '127.0.0.2');
  await once(server, 'listening');
  return { server, port: (server.address() as { port: number }).port };
}

function healthOf(boxes: Box[], port: number): HypervisorHealth {
  let at = 0;
  const pool = {
    containers: () => boxes,
    storeHealth: () => ({ writable: true, pending: false }),
    probeStore: async () => undefined,
  } as unknown as Pool;
  const driver = { name: 'test', health: async () => ({ problems: [], reachable: true }) } as unknown as ContainerDriver;
  // cacheMs 0 and a clock that moves: every report() is a new check.
  return new HypervisorHealth({ pool, driver, config: { minFreeBytes: 0, sshProbe: true, sshPort: port, cacheMs: 0, probeEveryMs: 1e9 }, now: () => (at += 1000) });
}

test('a student who stops the sshd of their own container does not make the hypervisor refuse everyone', async (t) => {
  const { server, port } = await bannerServer();
  t.teardown(() => server.close());
  // vzsb-0001 is leased and its student stopped its sshd (nothing listens on 127.0.0.3); the clean one answers.
  const health = healthOf([{ id: 'vzsb-0001', state: 'leased', address: '127.0.0.3' }, { id: 'vzsb-0002', state: 'clean', address: '127.0.0.2' }], port);
  for (let i = 0; i < 3; i++) {
    const report = await health.report();
    t.is(report.status, 'ok', JSON.stringify(report));
    t.is(report.checks.network?.sshProbe?.container, 'vzsb-0002', 'never the leased one');
  }
  t.is(health.lastDegraded(), null);
});

test(`clean containers whose sshd does not answer: degraded after ${SSH_PROBE_FAILURES} probes in a row, taken in turn; ok again with one answer`, async (t) => {
  const { server, port } = await bannerServer();
  t.teardown(() => server.close());
  const boxes: Box[] = [
    { id: 'vzsb-0001', state: 'clean', address: '127.0.0.3' },
    { id: 'vzsb-0002', state: 'clean', address: '127.0.0.3' },
  ];
  const health = healthOf(boxes, port);
  const first = await health.report();
  t.is(first.status, 'ok', 'one failed probe is not enough');
  t.false(first.checks.network!.sshProbe!.ok);
  const second = await health.report();
  t.is(second.status, 'degraded');
  t.not(second.checks.network!.sshProbe!.container, first.checks.network!.sshProbe!.container, 'the next clean container');
  t.regex(second.degraded.join('; '), /sshd at 127\.0\.0\.3:\d+ does not answer: .*2 probes in a row/);
  t.deepEqual(health.lastDegraded(), second.degraded);
  boxes[0]!.address = '127.0.0.2';
  boxes[1]!.address = '127.0.0.2';
  t.is((await health.report()).status, 'ok');
});
