import { VzsbError } from '../common/errors.js';
import type { Runner } from '../common/exec.js';

/**
 * A lab's traffic stays between its hosts and this machine: one nftables table per lab
 * drops anything routed into or out of the lab bridge, even if something on this machine
 * turns on IP forwarding. Traffic between hosts of the lab (bridged, seen with the bridge
 * as both input and output under br_netfilter) and to the bridge address itself passes.
 */
/**
 * By absolute path: under npm/npx, node_modules/.bin comes first in PATH and holds an
 * unrelated `nft` (Node File Trace).
 */
export const NFT = '/usr/sbin/nft';

export function firewallTable(bridge: string): string {
  return `vzsb_${bridge}`;
}

export function firewallRules(bridge: string): string {
  return [
    `table inet ${firewallTable(bridge)} {`,
    '  chain forward {',
    '    type filter hook forward priority 0; policy accept;',
    `    iifname "${bridge}" oifname != "${bridge}" drop`,
    `    oifname "${bridge}" iifname != "${bridge}" drop`,
    '  }',
    '}',
    '',
  ].join('\n');
}

export async function addFirewall(bridge: string, runner: Runner): Promise<void> {
  const result = await runner(NFT, ['-f', '-'], { input: firewallRules(bridge) });
  if (result.failed) throw new VzsbError('E_LAB_FIREWALL', `cannot add the lab's nftables table ${firewallTable(bridge)}: ${result.stderr.trim()}`);
}

export async function removeFirewall(bridge: string, runner: Runner): Promise<void> {
  const table = firewallTable(bridge);
  if ((await runner(NFT, ['list', 'table', 'inet', table])).failed) return;
  const result = await runner(NFT, ['delete', 'table', 'inet', table]);
  if (result.failed) throw new VzsbError('E_LAB_FIREWALL', `cannot remove the lab's nftables table ${table}: ${result.stderr.trim()}`);
}
