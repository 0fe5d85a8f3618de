import { createHash } from 'node:crypto';
import { VzsbError } from '../../common/errors.js';
import type { Runner } from '../../common/exec.js';
import { NFT } from '../../provision/facts/nftables.js';
import { containerIndex, containerMac, intToIp, ipToInt, type LxcDriverConfig } from './lxc-config.js';

/**
 * Anti-spoofing at the containers' bridge, in nftables' bridge family.
 *
 * Every container's host-side veth has a name derived from its id (`vz<tag>-<n>`, tag from
 * the bridge's name), and its MAC and IPv4 address come from the same number: so the whole
 * binding of port, MAC and address is known from the configuration alone. The driver loads
 * it once, at prepare, as two sets over the whole address range; a reset adds and removes
 * nothing (a port that does not exist matches nothing).
 *
 * Where: the bridge's prerouting hook at priority -300, before br_netfilter (priority 0),
 * which otherwise takes IPv4, IPv6 and ARP frames into the IP and ARP hooks first and a
 * priority-0 bridge chain never sees them. It sees every frame a container sends, to the
 * host or to anywhere else. What passes from a container's port:
 *   - frames from the port's own MAC only (so the bridge never learns another's MAC there);
 *   - ARP (Ethernet/IPv4) whose sender MAC and sender address are the port's own;
 *   - IPv4 from the port's own address, except DHCP server answers (UDP from port 67);
 *   - nothing else: no IPv6 (the driver assigns none; this drops router advertisements,
 *     neighbour discovery and DHCPv6 with it), no VLAN tags, no other ethertypes.
 * The forward hook at -300 drops every frame from one container's port to another's (ARP
 * included, which br_netfilter's ARP path would otherwise let through).
 *
 * With that, the host's neighbour table holds for each container address only the MAC of the
 * port the address belongs to. A gateway sits on another network, behind the host's routing:
 * no container frame reaches it.
 *
 * The table also makes connection tracking run in the host's network namespace (one `ct`
 * expression is enough): session liveness is read from it (./ssh-connections.ts).
 */
export function guardTag(bridge: string): string {
  return createHash('sha256').update(bridge).digest('hex').slice(0, 4);
}

export function guardTableName(bridge: string): string {
  return `vzsbguard_${guardTag(bridge)}`;
}

/** The container's host-side veth, `vz<tag>-<n>`: at most 15 characters for ids up to 8 digits. */
export function hostVethName(config: Pick<LxcDriverConfig, 'prefix' | 'bridge'>, id: string): string {
  const name = `vz${guardTag(config.bridge)}-${containerIndex(config, id)}`;
  if (name.length > 15) throw new VzsbError('E_INVALID', `container id ${id}: its number is too large for an interface name (${name})`);
  return name;
}

export function guardRuleset(config: Pick<LxcDriverConfig, 'bridge' | 'firstAddress' | 'lastAddress'>): string {
  const tag = guardTag(config.bridge);
  const table = guardTableName(config.bridge);
  const first = ipToInt(config.firstAddress);
  const last = ipToInt(config.lastAddress);
  const portMac: string[] = [];
  const portMacIp: string[] = [];
  for (let n = 0; first + n <= last; n++) {
    const ip = intToIp(first + n);
    const port = `"vz${tag}-${n}"`;
    portMac.push(`${port} . ${containerMac(ip)}`);
    portMacIp.push(`${port} . ${containerMac(ip)} . ${ip}`);
  }
  const ports = `"vz${tag}-*"`;
  return `# vzsandbox: anti-spoofing for the containers on bridge ${config.bridge} (written by the hypervisor daemon)
table bridge ${table}
delete table bridge ${table}
table bridge ${table} {
  set port_mac { type ifname . ether_addr; elements = { ${portMac.join(', ')} } }
  set port_mac_ip { type ifname . ether_addr . ipv4_addr; elements = { ${portMacIp.join(', ')} } }

  chain prerouting {
    type filter hook prerouting priority -300; policy accept;
    iifname != ${ports} accept
    iifname . ether saddr != @port_mac counter drop comment "a MAC not the port's own"
    ether type arp jump from_container_arp
    ether type ip jump from_container_ip
    counter drop comment "IPv6, VLAN tags, other ethertypes"
  }

  chain from_container_arp {
    arp htype 1 arp ptype ip arp hlen 6 arp plen 4 iifname . arp saddr ether . arp saddr ip @port_mac_ip accept
    counter drop comment "ARP claiming an address or MAC not the port's own"
  }

  chain from_container_ip {
    iifname . ether saddr . ip saddr != @port_mac_ip counter drop comment "IPv4 from an address not the port's own"
    udp sport 67 counter drop comment "DHCP server answers"
    accept
  }

  chain forward {
    type filter hook forward priority -300; policy accept;
    iifname ${ports} oifname ${ports} counter drop comment "container to container"
  }
}
table inet ${table}
delete table inet ${table}
table inet ${table} {
  chain track {
    type filter hook prerouting priority 0; policy accept;
    ct state invalid counter comment "keeps connection tracking on: session liveness reads it"
  }
}
`;
}

export async function applyGuard(runner: Runner, config: Pick<LxcDriverConfig, 'bridge' | 'firstAddress' | 'lastAddress'>): Promise<void> {
  const result = await runner(NFT, ['-f', '-'], { input: guardRuleset(config), timeoutMs: 60_000 });
  if (result.failed) {
    throw new VzsbError('E_DRIVER_RUNTIME', `loading the bridge guard for ${config.bridge} failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n').slice(-3).join(' ')}`, {
      details: result.stderr,
    });
  }
}

/** For tests and teardown: the guard of a bridge that is going away. */
export async function removeGuard(runner: Runner, bridge: string): Promise<void> {
  const table = guardTableName(bridge);
  await runner(NFT, ['delete', 'table', 'bridge', table]);
  await runner(NFT, ['delete', 'table', 'inet', table]);
}
