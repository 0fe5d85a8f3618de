import type { FactModule } from '../types.js';

export interface NftablesState {
  installed: boolean;
  /** Live tables as "family name", e.g. "inet vzsandbox". */
  tables: string[];
}

/**
 * nft by its path, not by PATH: an `nft` earlier in PATH (npm's @vercel/nft, in node_modules/.bin
 * of a local run) is another program. Debian, Ubuntu, RHEL and Alpine all install it here.
 */
export const NFT = '/usr/sbin/nft';

/** Whether nft is there and which tables the live ruleset has (`nft list tables`). */
export const nftablesFact: FactModule<NftablesState> = {
  name: 'nftables',
  command: () => `if [ -x ${NFT} ]; then echo nft=yes; ${NFT} list tables 2>/dev/null </dev/null; else echo nft=no; fi; true`,
  parse(stdout) {
    const lines = stdout.split('\n').map((l) => l.trim());
    const tables = lines
      .map((l) => /^table\s+(\S+)\s+(\S+)$/.exec(l))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => `${m[1]} ${m[2]}`);
    return { installed: lines.includes('nft=yes'), tables };
  },
};
