import test from 'ava';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { run, runChecked } from '../../src/common/exec.js';
import { guardTableName, hostVethName } from '../../src/daemons/drivers/bridge-guard.js';
import { eventually, sshExec, sshLogin } from '../../src/daemons/drivers/conformance.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { containerMac, type LxcDriverConfig } from '../../src/daemons/drivers/lxc-config.js';
import { NFT } from '../../src/provision/facts/nftables.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';
import { DHCP_OFFER_SCRIPT, forgedSessionScript, impersonateScript, ipv6RouterAdvertFrame, sendFramesScript } from '../helpers/spoof.js';

// The bridge guard and session liveness against a root user inside a container. Unique to this
// file: bridge vzsbt60 / 10.231.60.0/24, containers "vzl60-N", own lxcPath.
const INDEX = 60;
const PREFIX = `vzl${INDEX}-`;
const ATTACKER = `${PREFIX}1`;
const VICTIM = `${PREFIX}2`;
let bridge: TestBridge;
let lxcPath: string;
let driver: LxcDriver;
let config: LxcDriverConfig;
const { utils } = ssh2;

test.before(async () => {
  bridge = await createTestBridge(INDEX);
  lxcPath = await mkdtemp(join(tmpdir(), `vzsb-lxc${INDEX}-`));
  // .5 stands for a gateway on another network: its connections count as sessions.
  config = lxcConfigOn(bridge, { prefix: PREFIX, lxcPath, baseName: `vzl${INDEX}base`, limits: { memoryMiB: 256, pidsMax: 256 }, sessionSources: [bridge.address(5)] });
  driver = new LxcDriver({ config });
  await driver.prepare();
  for (const id of [ATTACKER, VICTIM]) {
    await driver.create(id);
    await driver.start(id);
  }
});

test.after.always(async () => {
  for (const c of await driver?.list().catch(() => []) ?? []) await driver.destroy(c.id).catch(() => undefined);
  if (lxcPath) await rm(lxcPath, { recursive: true, force: true });
  await bridge?.remove();
});

const addressOf = (id: string) => driver.list().then((l) => l.find((c) => c.id === id)!.address!);

async function login(id: string) {
  const keys = utils.generateKeyPairSync('ed25519');
  await driver.authorizeKey(id, keys.public);
  const hostKey = (await driver.hostKey(id)).publicKey.split(' ')[1]!;
  return sshLogin(await addressOf(id), keys.private, hostKey);
}

/** Packets dropped by the guard's rules so far, by rule comment. */
async function drops(): Promise<Record<string, number>> {
  const out = await runChecked(NFT, ['list', 'table', 'bridge', guardTableName(bridge.name)]);
  const counts: Record<string, number> = {};
  for (const m of out.stdout.matchAll(/counter packets (\d+) bytes \d+ drop comment "([^"]+)"/g)) counts[m[2]!] = (counts[m[2]!] ?? 0) + Number(m[1]);
  if (Object.keys(counts).length === 0) throw new Error(`no drop counters in the guard table:\n${out.stdout.split('\n').filter((l) => !/^\s*"/.test(l)).join('\n')}\n${(await run(NFT, ['list', 'tables'])).stdout}\n${(await run('ip', ['-o', 'link', 'show', 'master', bridge.name])).stdout}`);
  return counts;
}

async function neighbourMac(ip: string): Promise<string | undefined> {
  const out = await run('ip', ['-4', 'neigh', 'show', ip, 'dev', bridge.name]);
  return /lladdr (\S+)/.exec(out.stdout)?.[1];
}

/** The bridge port the FDB has learnt a MAC on. */
async function fdbPort(mac: string): Promise<string | undefined> {
  const out = await run('bridge', ['fdb', 'show', 'br', bridge.name]);
  return out.stdout.split('\n').find((l) => l.startsWith(mac + ' ') && !l.includes('permanent'))?.split(/\s+/)[2];
}

test.serial('a container that claims its neighbour\'s address (with its own MAC, then with the neighbour\'s) changes nothing for the neighbour', async (t) => {
  const victimIp = await addressOf(VICTIM);
  const victimMac = containerMac(victimIp);
  const hostMac = (await readFile(`/sys/class/net/${bridge.name}/address`, 'utf8')).trim();
  const session = await login(VICTIM);
  t.teardown(() => session.end());
  t.is(await sshExec(session, 'echo before'), 'before\n');
  t.is(await neighbourMac(victimIp), victimMac);
  t.is(await fdbPort(victimMac), hostVethName(config, VICTIM));
  const before = await drops();

  const ownMac = containerMac(await addressOf(ATTACKER));
  for (const mac of [ownMac, victimMac]) {
    const attack = await driver.exec(ATTACKER, ['/bin/sh', '-c', impersonateScript({ victimIp, victimMac: mac, prefixLength: 24, host: bridge.gateway, hostMac })]);
    t.is(attack.exitCode, 0, attack.stderr);
    t.is(await neighbourMac(victimIp), victimMac, `the host's neighbour entry after an attack from ${mac}`);
    t.is(await fdbPort(victimMac), hostVethName(config, VICTIM), `the bridge still knows the victim's MAC on its own port after an attack from ${mac}`);
    t.is(await sshExec(session, 'echo still here'), 'still here\n', 'the open session is untouched');
  }
  const after = await drops();
  t.true((after["ARP claiming an address or MAC not the port's own"] ?? 0) > (before["ARP claiming an address or MAC not the port's own"] ?? 0) || (after["a MAC not the port's own"] ?? 0) > (before["a MAC not the port's own"] ?? 0), JSON.stringify(after));
  t.true((after["IPv4 from an address not the port's own"] ?? 0) > (before["IPv4 from an address not the port's own"] ?? 0) || (after["a MAC not the port's own"] ?? 0) > (before["a MAC not the port's own"] ?? 0), JSON.stringify(after));
  t.true((after["a MAC not the port's own"] ?? 0) > (before["a MAC not the port's own"] ?? 0), 'frames from the stolen MAC were dropped');
  const next = await login(VICTIM);
  t.is(await sshExec(next, 'hostname'), `${VICTIM}\n`, 'the next login reaches the victim');
  next.end();
});

test.serial('router advertisements (IPv6) and DHCP answers from a container are dropped; containers do not reach each other', async (t) => {
  await driver.destroy(ATTACKER); // a fresh attacker with its own identity again
  await driver.create(ATTACKER);
  await driver.start(ATTACKER);
  const before = await drops();
  const ownMac = containerMac(await addressOf(ATTACKER));
  const ra = await driver.exec(ATTACKER, ['/bin/sh', '-c', sendFramesScript([ipv6RouterAdvertFrame(ownMac), ipv6RouterAdvertFrame(ownMac)])]);
  t.is(ra.exitCode, 0, ra.stderr);
  const dhcp = await driver.exec(ATTACKER, ['/bin/sh', '-c', DHCP_OFFER_SCRIPT]);
  t.is(dhcp.exitCode, 0, dhcp.stderr);
  const after = await drops();
  t.true((after['IPv6, VLAN tags, other ethertypes'] ?? 0) >= (before['IPv6, VLAN tags, other ethertypes'] ?? 0) + 2, JSON.stringify(after));
  t.true((after['DHCP server answers'] ?? 0) > (before['DHCP server answers'] ?? 0), JSON.stringify(after));
  const victimIp = await addressOf(VICTIM);
  const reach = await driver.exec(ATTACKER, ['/bin/bash', '-c', `timeout 3 bash -c 'echo > /dev/tcp/${victimIp}/22' && echo reached`]);
  t.not(reach.stdout.trim(), 'reached');
  t.true(((await drops())['container to container'] ?? 0) > (before['container to container'] ?? 0), 'dropped at the bridge, not only by the IP firewall');
});

test.serial('an ssh session is a tracked connection from the host or a gateway: a forged one inside the container is not', async (t) => {
  const ownIp = await addressOf(ATTACKER);
  const forged = await driver.exec(ATTACKER, ['/bin/sh', '-c', forgedSessionScript({ gatewayIp: bridge.address(5), ownIp, seconds: 120 })]);
  t.is(forged.exitCode, 0, forged.stderr);
  t.is(await driver.sessionCount(ATTACKER), 0, 'the gateway address on the container\'s loopback and a process titled "sshd: root@notty" prove nothing');
  const session = await login(ATTACKER);
  t.is(await eventually(() => driver.sessionCount(ATTACKER), (n) => n === 1, 10_000), 1);
  session.end();
  t.is(await eventually(() => driver.sessionCount(ATTACKER), (n) => n === 0, 10_000), 0);
});
