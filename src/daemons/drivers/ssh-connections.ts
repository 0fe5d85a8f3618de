import { readFile } from 'node:fs/promises';
import { run, type Runner } from '../../common/exec.js';

/**
 * "In use" as evidence a student cannot forge: established TCP connections from a gateway's
 * address to a container's sshd, in the hypervisor host's connection-tracking table.
 *
 * Why this table and not the container's own: its root holds CAP_NET_ADMIN in its network
 * namespace, so it can put a gateway's address on its loopback (or in a namespace of its own
 * behind a veth) and connect to its own sshd "from" it; the container's socket table, read
 * from the host or not, then shows an established session from a gateway. The host's table
 * only gets an entry for a connection whose packets crossed the host: the bridge guard drops
 * every frame a container sends from an address that is not its own, and a gateway's packets
 * come from the gateway. Process titles ("sshd: root@notty") prove nothing at all.
 *
 * An entry also needs a packet within `staleSeconds` (a live session has one every 15 s: the
 * gateway's keep-alive, the container's ClientAlive probes): a connection whose gateway side
 * vanished without a FIN stops counting after that, not after the kernel's 5-day timeout.
 */
export interface SshConnectionsOptions {
  /** addresses whose connections count: the gateways (and the host's own bridge address) */
  sources: readonly string[];
  /** the containers' sshd port */
  port?: number;
  /** the table in conntrack's line format; default /proc/net/nf_conntrack, else `conntrack -L` */
  readTable?: () => Promise<string>;
  /** the kernel's established timeout, seconds; default from /proc/sys/net/netfilter */
  readEstablishedTimeout?: () => Promise<number>;
  staleSeconds?: number;
  /** one read serves every count asked within this long (a reclaim pass asks for each lease) */
  cacheMs?: number;
  runner?: Runner;
}

export interface TrackedConnection {
  state: string;
  /** seconds until the entry expires */
  timeout: number;
  src: string;
  dst: string;
  sport: number;
  dport: number;
}

const LINE = /^(?:ipv4\s+2\s+)?tcp\s+6\s+(\d+)\s+([A-Z_]+)\s+src=(\S+)\s+dst=(\S+)\s+sport=(\d+)\s+dport=(\d+)/;

/** The TCP entries of a conntrack table (/proc/net/nf_conntrack or `conntrack -L` lines), original direction. */
export function parseConntrack(text: string): TrackedConnection[] {
  const out: TrackedConnection[] = [];
  for (const line of text.split('\n')) {
    const m = LINE.exec(line.trim());
    if (!m) continue;
    out.push({ timeout: Number(m[1]), state: m[2]!, src: m[3]!, dst: m[4]!, sport: Number(m[5]), dport: Number(m[6]) });
  }
  return out;
}

export class SshConnections {
  private readonly sources: Set<string>;
  private readonly port: number;
  private readonly staleSeconds: number;
  private readonly cacheMs: number;
  private readonly readTable: () => Promise<string>;
  private readonly readEstablishedTimeout: () => Promise<number>;
  private cached: { at: number; table: Promise<{ entries: TrackedConnection[]; established: number }> } | undefined;

  constructor(options: SshConnectionsOptions) {
    this.sources = new Set(options.sources);
    this.port = options.port ?? 22;
    this.staleSeconds = options.staleSeconds ?? 120;
    this.cacheMs = options.cacheMs ?? 1000;
    const runner = options.runner ?? run;
    this.readTable = options.readTable ?? (() => defaultTable(runner));
    this.readEstablishedTimeout =
      options.readEstablishedTimeout ??
      (() => readFile('/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established', 'utf8').then(Number, () => 432000));
  }

  /** Live ssh connections from a source to `address`. */
  async count(address: string): Promise<number> {
    const { entries, established } = await this.table();
    return entries.filter(
      (c) => c.state === 'ESTABLISHED' && c.dst === address && c.dport === this.port && this.sources.has(c.src) && established - c.timeout <= this.staleSeconds,
    ).length;
  }

  private table(): Promise<{ entries: TrackedConnection[]; established: number }> {
    const now = performance.now();
    if (!this.cached || now - this.cached.at > this.cacheMs) {
      const table = Promise.all([this.readTable(), this.readEstablishedTimeout()]).then(([text, established]) => ({ entries: parseConntrack(text), established }));
      this.cached = { at: now, table };
      table.catch(() => (this.cached = undefined));
    }
    return this.cached.table;
  }
}

async function defaultTable(runner: Runner): Promise<string> {
  const proc = await readFile('/proc/net/nf_conntrack', 'utf8').catch(() => undefined);
  if (proc !== undefined) return proc;
  // Kernels without CONFIG_NF_CONNTRACK_PROCFS (Debian's): the conntrack tool, same line format.
  const result = await runner('conntrack', ['-L', '-p', 'tcp'], { timeoutMs: 30_000 });
  if (result.failed) throw new Error(`conntrack -L failed (exit ${result.exitCode}): ${result.stderr.trim().slice(-300)}`);
  return result.stdout;
}
