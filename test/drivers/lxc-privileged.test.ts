import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runDriverConformance } from '../../src/daemons/drivers/conformance.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';

// The LXC driver without an id map (privileged containers), for hosts that cannot grant root
// subordinate ids. Unique to this file: bridge vzsbt12 / 10.231.12.0/24, containers "vzl12-N".
const INDEX = 12;
const PREFIX = `vzl${INDEX}-`;
const QUOTA = { diskMiB: 96, inodes: 2048 };
let bridge: TestBridge | undefined;
let lxcPath: string | undefined;

async function setup(): Promise<LxcDriver> {
  bridge = await createTestBridge(INDEX);
  lxcPath = await mkdtemp(join(tmpdir(), `vzsb-lxc${INDEX}-`));
  return new LxcDriver({
    config: lxcConfigOn(bridge, { prefix: PREFIX, lxcPath, baseName: `vzl${INDEX}base`, limits: { pidsMax: 256 }, quota: QUOTA }),
  });
}

runDriverConformance(test, 'lxc privileged', setup, {
  ids: Array.from({ length: 8 }, (_, i) => `${PREFIX}${i + 1}`),
  concurrency: 2,
  quota: QUOTA,
  skip: { isolation: 'privileged mode (driver.privileged): container root is host root, on purpose; the limits sit one level above its cgroup namespace all the same' },
});

// After the suite's own teardown (hooks run in the order they were registered).
test.serial.after.always(async () => {
  if (lxcPath) await rm(lxcPath, { recursive: true, force: true });
  await bridge?.remove();
});
