import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ManualClock } from '../../src/daemons/common/clock.js';
import { loadBalancerConfig, parseBalancerConfig } from '../../src/daemons/balancer/config.js';
import { HealthMonitor } from '../../src/daemons/balancer/health.js';
import { HypervisorClient } from '../../src/daemons/balancer/hypervisor-client.js';
import { captureLog } from '../helpers/daemons.js';

const TOKEN = 'balancer-token-0123456789abcdef';
const hyp = (extra: Record<string, unknown> = {}) => ({ name: 'hyp01', url: 'http://10.0.0.11:8750', token: TOKEN, ...extra });

test('config errors name the bad field', async (t) => {
  const cases: [unknown, RegExp][] = [
    [{ tokens: {} }, /hypervisors: required array/],
    [{ tokens: {}, hypervisors: [] }, /hypervisors: at least one hypervisor/],
    [{ tokens: {}, hypervisors: [hyp({ url: 'ftp://x' })] }, /hypervisors\[0\]\.url: expected an http/],
    [{ tokens: {}, hypervisors: [hyp({ token: undefined })] }, /hypervisors\[0\]\.token: set exactly one of token and tokenFile/],
    [{ tokens: {}, hypervisors: [hyp({ tokenFile: '/x' })] }, /hypervisors\[0\]\.token: set exactly one of token and tokenFile/],
    [{ tokens: {}, hypervisors: [hyp({ token: 'short' })] }, /hypervisors\[0\]\.token: a token of at least 16 characters/],
    [{ tokens: {}, hypervisors: [hyp(), hyp({ url: 'http://b:1' })] }, /hypervisors\[1\]\.name: duplicate hypervisor name "hyp01"/],
    [{ tokens: {}, hypervisors: [hyp({ name: 'bad name' })] }, /hypervisors\[0\]\.name: expected a host name/],
    [{ tokens: { lease: ['x'] }, hypervisors: [hyp()] }, /tokens\.lease\[0\]: a token of at least 16/],
    [{ tokens: {}, hypervisors: [hyp()], lease: { deadlineMs: 10 } }, /lease\.deadlineMs: /],
    [{ tokens: {}, hypervisors: [hyp()], health: { everyMs: 10 } }, /health: unknown field everyMs/],
    [{ tokens: {}, hypervisors: [hyp({ tokenFile: '/nonexistent/token', token: undefined })] }, /hypervisors\[0\]\.tokenFile: cannot read \/nonexistent\/token: ENOENT/],
  ];
  for (const [value, message] of cases) {
    const err = await t.throwsAsync(parseBalancerConfig(value, 'balancer.yaml'));
    t.regex(err!.message, message, JSON.stringify(value));
    t.true(err!.message.startsWith('balancer.yaml: '));
  }
  const ok = await parseBalancerConfig({ tokens: {}, hypervisors: [hyp({ url: 'http://10.0.0.11:8750/' })] });
  t.like(ok, { listen: { host: '127.0.0.1', port: 8760 }, hypervisors: [{ name: 'hyp01', url: 'http://10.0.0.11:8750', token: TOKEN }], lease: { deadlineMs: 18_000, attemptTimeoutMs: 12_000, lookupTimeoutMs: 2000 } });

  const dir = await mkdtemp(join(tmpdir(), 'vzsb-balcfg-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'b.yaml'), 'hypervisors: [');
  await t.throwsAsync(loadBalancerConfig(join(dir, 'b.yaml')), { message: /b\.yaml: not valid YAML/ });
  await t.throwsAsync(loadBalancerConfig(join(dir, 'missing.yaml')), { message: /cannot read .*missing\.yaml/ });
});

test('health: down from a failed poll, up again from a good one, with last-seen times and one log line per change', async (t) => {
  let answer = 200;
  const server = createServer((req, res) => {
    res.writeHead(answer, { 'content-type': 'application/json' });
    res.end(answer === 200 ? JSON.stringify({ status: 'ok', capacity: { clean: 1, leased: 0, building: 0, dirty: 0, broken: 0, max: 2, standby: 1 } }) : JSON.stringify({ error: { code: 'E_SHUTTING_DOWN', message: 'stopping' } }));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const clock = new ManualClock();
  const log = captureLog();
  const changes: string[] = [];
  const health = new HealthMonitor([new HypervisorClient({ name: 'h1', url, token: TOKEN }), new HypervisorClient({ name: 'gone', url: 'http://127.0.0.1:9/', token: TOKEN })], {
    intervalMs: 60_000,
    timeoutMs: 3000,
    clock,
    logger: log.logger,
    onChange: (name, up) => changes.push(`${name}:${up}`),
  });
  t.false(health.isUp('h1'), 'unknown before the first poll');
  await health.start();
  t.teardown(() => health.stop());
  t.like(health.get('h1'), { up: true, lastSeen: clock.now(), lastError: null, capacity: { clean: 1, max: 2 } });
  t.like(health.get('gone'), { up: false, lastSeen: null });
  const seen = clock.now();
  clock.advance(10);
  answer = 503;
  await health.pollAll();
  t.like(health.get('h1'), { up: false, lastSeen: seen, since: clock.now() });
  t.regex(health.get('h1')!.lastError!, /h1: stopping/);
  await health.pollAll();
  clock.advance(5);
  answer = 200;
  await health.pollAll();
  t.like(health.get('h1'), { up: true, lastSeen: clock.now(), lastError: null });
  t.deepEqual([...changes.slice(0, 2).sort(), ...changes.slice(2)], ['gone:false', 'h1:true', 'h1:false', 'h1:true'], 'the first round polls both in parallel');
  t.deepEqual(log.records.filter((r) => r.hypervisor === 'h1').map((r) => r.event), ['hypervisor.up', 'hypervisor.down', 'hypervisor.up']);
  t.is(log.records.filter((r) => r.hypervisor === 'gone').length, 1);
});

test('health: one poll that times out leaves a hypervisor up (logged slow); two in a row make it down; a refused connection at once', async (t) => {
  let delayMs = 0;
  const server = createServer((req, res) => {
    setTimeout(() => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ status: 'ok', capacity: { clean: 1, leased: 0, building: 0, dirty: 0, broken: 0, max: 2, standby: 1 } }));
    }, delayMs);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const url = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  const log = captureLog();
  // A timely answer on loopback can take a few hundred ms on a loaded 2-core machine: the
  // timeout is 1.5 s and a late answer comes 5 s later (never in time).
  const health = new HealthMonitor([new HypervisorClient({ name: 'slowpoke', url, token: TOKEN })], { intervalMs: 60_000, timeoutMs: 1500, clock: new ManualClock(), logger: log.logger });
  await health.start();
  t.teardown(() => health.stop());
  t.true(health.isUp('slowpoke'));
  delayMs = 5000;
  await health.pollAll();
  t.true(health.isUp('slowpoke'), 'one late answer');
  t.truthy(log.records.find((r) => r.event === 'hypervisor.slow'));
  await health.pollAll();
  t.false(health.isUp('slowpoke'), 'two in a row');
  delayMs = 0;
  await health.pollAll();
  t.true(health.isUp('slowpoke'));
  server.closeAllConnections();
  await new Promise<void>((r) => server.close(() => r()));
  await health.pollAll();
  t.false(health.isUp('slowpoke'), 'refused: down at once');
});
