import test from 'ava';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runDriverConformance } from '../../src/daemons/drivers/conformance.js';
import { OpenVzDriver } from '../../src/daemons/drivers/openvz.js';
import { createFakeOpenVz, type FakeOpenVz } from '../fixtures/openvz/fake.js';

// The prlctl backend (OpenVZ 7) against the FAKE prlctl of test/fixtures/openvz: no OpenVZ
// kernel here. Unique to this file: addresses 127.231.22.0/24, ids "vzp22-N".
const INDEX = 22;
const PREFIX = `vzp${INDEX}-`;
let fake: FakeOpenVz;
let driver: OpenVzDriver;

test.serial.before(async () => {
  fake = await createFakeOpenVz(INDEX, 'prlctl', PREFIX);
  driver = new OpenVzDriver({ config: fake.config, runner: fake.runner, connections: fake.connections, scratchDir: fake.stateDir });
});

runDriverConformance(test, 'openvz prlctl (fake prlctl, no kernel)', () => driver, {
  ids: Array.from({ length: 8 }, (_, i) => `${PREFIX}${i + 1}`),
  concurrency: 2,
  skip: {
    sshLogin: 'fake OpenVZ: a stand-in greets at the address, there is no sshd to log in to',
    quota: 'fake OpenVZ: no kernel enforces --diskspace/--diskinodes here (the arguments are checked in this file)',
    isolation: 'fake OpenVZ: no kernel here, the fake prlctl runs no processes and maps no ids',
  },
});

// After the suite's own teardown (hooks run in the order they were registered).
test.serial.after.always(async () => {
  await fake?.cleanup();
});

test.serial('openvz prlctl: create names the container, sets address, hostname, limits and the host key', async (t) => {
  const id = `${PREFIX}100`;
  await driver.create(id);
  t.teardown(() => driver.destroy(id));
  const listed = (await driver.list()).find((x) => x.id === id);
  t.deepEqual(listed, { id, running: false, address: '127.231.22.110' });
  const confs = await readdir(join(fake.stateDir, 'conf'));
  const conf = JSON.parse(await readFile(join(fake.stateDir, 'conf', confs.find((f) => f.includes('-'))!), 'utf8'));
  t.is(conf.name, id);
  t.is(conf.hostname, id);
  t.deepEqual(conf.resources, { memsize: '256', swappages: String(64 * 256), cpuunits: '1000', cpulimit: '150', cpumask: '0-1', nproc: '256' });
  t.regex(conf.description, /^ssh-ed25519 /);
});
