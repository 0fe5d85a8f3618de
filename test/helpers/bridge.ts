import { run, runChecked } from '../../src/common/exec.js';
import { removeGuard } from '../../src/daemons/drivers/bridge-guard.js';
import { NFT } from '../../src/provision/facts/nftables.js';
import { removeCgroupTree } from './cgroups.js';
import type { LxcDriverConfig } from '../../src/daemons/drivers/lxc-config.js';

/**
 * A Linux bridge for one test file: name `vzsbt<index>`, network 10.231.<index>.0/24, the
 * host at .1. Pick an index no other test file uses. Forwarding to and from the bridge is
 * dropped by its own nftables table, so containers on it can reach nothing but the host.
 */
export interface TestBridge {
  name: string;
  subnet: string;
  gateway: string;
  /** 10.231.<index>.<host> */
  address(host: number): string;
  remove(): Promise<void>;
}

export async function createTestBridge(index: number): Promise<TestBridge> {
  if (!Number.isInteger(index) || index < 1 || index > 254) throw new Error(`bridge index ${index}: expected 1-254`);
  const name = `vzsbt${index}`;
  const table = `vzsbt${index}`;
  const remove = async () => {
    await run('ip', ['link', 'del', name]);
    await run(NFT, ['delete', 'table', 'inet', table]);
    await removeGuard(run, name); // what an LXC driver on it loaded
    await removeCgroupTree(testParentCgroup(name));
  };
  await remove(); // leftovers of a killed run
  await runChecked('ip', ['link', 'add', 'name', name, 'type', 'bridge']);
  // A fixed MAC: a bridge without one takes the lowest of its ports' MACs, so it changes as
  // containers come and go and the containers' cached gateway MAC goes stale.
  await runChecked('ip', ['link', 'set', name, 'address', `02:42:0a:e7:${index.toString(16).padStart(2, '0')}:01`]);
  await runChecked('ip', ['addr', 'add', `10.231.${index}.1/24`, 'dev', name]);
  await runChecked('ip', ['link', 'set', name, 'up']);
  const rules = `table inet ${table} {
  chain forward {
    type filter hook forward priority -10; policy accept;
    iifname "${name}" drop
    oifname "${name}" drop
  }
}
`;
  await runChecked(NFT, ['-f', '-'], { input: rules });
  return {
    name,
    subnet: `10.231.${index}.0/24`,
    gateway: `10.231.${index}.1`,
    address: (host) => `10.231.${index}.${host}`,
    remove,
  };
}

/** The parent cgroup of the containers on a test bridge (removed with the bridge). */
export function testParentCgroup(bridgeName: string): string {
  return `vzsb-test-${bridgeName}`;
}

/**
 * An LXC driver configuration on a test bridge: containers at .10-.250, no limits unless
 * given, and its own parent cgroup. Unprivileged when `idmap` is given (the caller grants
 * root the block: idBlock() says which); otherwise privileged, explicitly.
 */
export function lxcConfigOn(
  bridge: TestBridge,
  fields: Pick<LxcDriverConfig, 'prefix' | 'lxcPath' | 'baseName'> & Partial<LxcDriverConfig>,
): LxcDriverConfig {
  return {
    bridge: bridge.name,
    subnet: bridge.subnet,
    gateway: bridge.gateway,
    firstAddress: bridge.address(10),
    lastAddress: bridge.address(250),
    limits: {},
    packages: [],
    startTimeoutMs: 10_000,
    privileged: fields.idmap === undefined,
    parentCgroup: { name: testParentCgroup(bridge.name), memoryReserveMiB: 1024, pidsMax: 32768 },
    ...fields,
  };
}
