import test from 'ava';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { removeGuard } from '../../src/daemons/drivers/bridge-guard.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { removeCgroupTree } from '../helpers/cgroups.js';

// manageBridge: the daemon makes its own bridge at start (hosts deployed by vzsb have no other
// network configuration for it). Unique to this file: bridge vzsbt51, 10.231.51.0/24, "vzl51-N".
const BRIDGE = 'vzsbt51';
const PARENT_CGROUP = 'vzsb-test-vzsbt51';
let lxcPath: string | undefined;
let driver: LxcDriver | undefined;

test.after.always(async () => {
  await driver?.destroy('vzl51-1').catch(() => {});
  if (lxcPath) await rm(lxcPath, { recursive: true, force: true });
  await run('ip', ['link', 'del', BRIDGE]);
  await removeCgroupTree(PARENT_CGROUP);
  await removeGuard(run, BRIDGE); // the driver's bridge guard for it
});

test('prepare makes a missing bridge with a fixed MAC and the gateway address; containers answer on it', async (t) => {
  await run('ip', ['link', 'del', BRIDGE]);
  lxcPath = await mkdtemp(join(tmpdir(), 'vzsb-lxc51-'));
  driver = new LxcDriver({
    config: {
      prefix: 'vzl51-', lxcPath, baseName: 'vzl51base', bridge: BRIDGE, manageBridge: true,
      subnet: '10.231.51.0/24', gateway: '10.231.51.1', firstAddress: '10.231.51.10', lastAddress: '10.231.51.250',
      limits: {}, packages: [], startTimeoutMs: 20_000,
      // what this file tests needs no id map; its own parent cgroup, removed afterwards
      privileged: true, parentCgroup: { name: PARENT_CGROUP, memoryReserveMiB: 1024, pidsMax: 32768 },
    },
  });
  await driver.prepare();
  t.is(readFileSync(`/sys/class/net/${BRIDGE}/addr_assign_type`, 'utf8').trim(), '3', 'a MAC set by us, not inherited from ports');
  t.is(readFileSync(`/sys/class/net/${BRIDGE}/address`, 'utf8').trim(), '02:76:7a:e7:33:01');
  const addr = await run('ip', ['-4', '-o', 'addr', 'show', 'dev', BRIDGE]);
  t.regex(addr.stdout, /inet 10\.231\.51\.1\/24/);
  await driver.prepare(); // a second prepare leaves the existing bridge alone
  const info = await driver.create('vzl51-1');
  await driver.start('vzl51-1');
  t.is(info.address, '10.231.51.11');
  const r = await driver.exec('vzl51-1', ['ip', '-4', 'route', 'show', 'default']);
  t.regex(r.stdout, /via 10\.231\.51\.1/);
});
