import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { DEFAULT_CERT_VALIDITY, SANDBOX_PRINCIPAL, type HostCa } from './host-cert.js';
import { hostVethName } from './bridge-guard.js';

/**
 * Configuration of the LXC driver. The hypervisor daemon validates its YAML section with
 * `lxcDriverConfigSchema`; code after that trusts these types.
 */
export interface LxcLimits {
  /** memory limit per container, MiB */
  memoryMiB?: number | undefined;
  /** relative CPU share in cgroup v1 units (2..262144, kernel default 1024); converted to cpu.weight on v2 */
  cpuShares?: number | undefined;
  /** maximum number of tasks per container */
  pidsMax?: number | undefined;
  /** swap per container on top of memoryMiB, MiB (needs memoryMiB; 0: no swap) */
  swapMiB?: number | undefined;
  /** CPUs the container may run on, a cpuset list like "0-3" or "1,3" */
  cpus?: string | undefined;
  /** CPU time at most, in percent of one CPU (150: one and a half CPUs) */
  cpuPercent?: number | undefined;
}

/**
 * The cgroup all student containers live under on this host (one level above each
 * container's own), with limits for all of them together so that the host and the daemon
 * keep room: memory = the host's memory minus `memoryReserveMiB`, tasks at most `pidsMax`.
 */
export interface LxcParentCgroup {
  /** a relative cgroup path, the same in every hierarchy */
  name: string;
  /** memory left to the host outside all containers, MiB (0: no total memory limit) */
  memoryReserveMiB: number;
  /** tasks of all containers together (0: no total limit) */
  pidsMax: number;
}

/** Every container gets its own range of this many host ids (uids and gids 0..65535 inside). */
export const ID_RANGE_SIZE = 65536;

export interface LxcDriverConfig {
  /** container names are `<prefix><digits>`, e.g. "vzsb-0007"; only those are listed */
  prefix: string;
  /** LXC's container directory (lxc-* -P) */
  lxcPath: string;
  /** the bridge the containers' veth ends join */
  bridge: string;
  /** make the bridge (fixed MAC, gateway address) at prepare() when it is missing */
  manageBridge?: boolean | undefined;
  /** the bridge's network, e.g. "10.231.0.0/24" */
  subnet: string;
  /** the host's address on the bridge, the containers' default gateway */
  gateway: string;
  /** address of the container whose numeric suffix is 0; suffix n gets firstAddress + n */
  firstAddress: string;
  /** highest address a container may get; bounds the numeric suffix */
  lastAddress: string;
  /** name of the stopped base container clones are made from (not listed: it has no numeric suffix) */
  baseName: string;
  limits: LxcLimits;
  /**
   * Unprivileged containers, each with host ids of its own: the container with numeric suffix
   * n maps its uids/gids 0..65535 to start + n*65536 .. start + n*65536 + 65535 (ranges
   * never overlap, and a reset keeps its container's range). The block must cover every
   * suffix the address range allows (count at least slots*65536; the default is exactly
   * that), and the host must grant root the block in /etc/subuid and /etc/subgid.
   */
  idmap?: { start: number; count?: number | undefined } | undefined;
  /**
   * Privileged containers (container root is host root): only with this explicit option,
   * logged loudly at every start. Never for students who are not trusted (docs/drivers.md).
   */
  privileged?: boolean | undefined;
  /** unprivileged: make the lower layers of slots 0..n-1 in the background after prepare (the pool's max) */
  prewarmSlots?: number | undefined;
  /** the parent cgroup of all containers (default "vzsandbox", reserve 1024 MiB, 32768 tasks) */
  parentCgroup?: LxcParentCgroup | undefined;
  /**
   * Disk and inode quota per container: each clone's upper layer on an ext4 volume of this
   * size and inode count (./lxc-volume.ts). Without it clones write to lxcPath's filesystem.
   */
  quota?: { diskMiB: number; inodes: number } | undefined;
  /** packages added to the base's root filesystem on top of BASE_PACKAGES */
  packages: string[];
  /** how long start() waits for sshd to answer */
  startTimeoutMs: number;
  /**
   * Addresses whose established connections to a container's sshd make it "in use": the
   * gateways. The host's own bridge address always counts.
   */
  sessionSources?: string[] | undefined;
  /** where ensureRootfs keeps debootstrap trees (default /var/cache/vzsandbox/rootfs) */
  rootfsCacheDir?: string | undefined;
  /** Debian mirror for debootstrap (default: the one apt uses) */
  mirror?: string | undefined;
  /** Sign each clone's host key with this CA (host-cert.ts); without it clones have a bare key. */
  hostCa?: HostCa | undefined;
}

/** Where the id block starts unless configured (far above the ids useradd hands out). */
export const DEFAULT_ID_BLOCK_START = 1_000_000_000;

/** What every base has: sshd and the few tools a student expects. Kept small on purpose. */
export const BASE_PACKAGES: readonly string[] = ['openssh-server', 'iproute2', 'procps', 'less', 'ca-certificates'];

/** Fields both container drivers' configs share. */
export const ipv4 = z.ipv4({ error: 'expected an IPv4 address' });
export const idPrefix = z.string().regex(/^[a-z][a-z0-9-]{0,11}$/, 'expected lower-case letters, digits and "-", 1-12 characters, starting with a letter').default('vzsb-');
export const absolutePath = z.string().regex(/^\//, 'expected an absolute path');
/** A disk and inode quota per container (LXC: a volume of its own; OpenVZ: vzctl --diskspace/--diskinodes). */
export const diskQuota = z
  .object({
    diskMiB: z.number().int().min(64).max(16 * 1024 * 1024),
    inodes: z.number().int().min(1024).max(1_000_000_000),
  })
  .strict();
export const startTimeoutMs = (fallback: number) => z.number().int().min(100).max(600_000).default(fallback);

export const lxcDriverConfigSchema = z
  .object({
    prefix: idPrefix,
    lxcPath: absolutePath.default('/var/lib/lxc'),
    bridge: z.string().regex(/^[A-Za-z0-9_.-]{1,15}$/, 'expected an interface name of at most 15 characters'),
    manageBridge: z.boolean().default(false),
    subnet: z.cidrv4({ error: 'expected an IPv4 network like 10.231.0.0/24' }),
    gateway: ipv4,
    firstAddress: ipv4,
    lastAddress: ipv4,
    baseName: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a container name').default('vzsb-base'),
    limits: z
      .object({
        memoryMiB: z.number().int().min(16).optional(),
        cpuShares: z.number().int().min(2).max(262144).optional(),
        pidsMax: z.number().int().min(8).optional(),
        swapMiB: z.number().int().min(0).optional(),
        cpus: z.string().regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'expected a CPU list like "0-3" or "0,2"').optional(),
        cpuPercent: z.number().int().min(1).max(100_000).optional(),
      })
      .strict()
      .default({}),
    idmap: z
      .object({
        start: z.number().int().min(65536).max(4_000_000_000).default(DEFAULT_ID_BLOCK_START),
        count: z.number().int().min(ID_RANGE_SIZE).max(4_000_000_000).optional(),
      })
      .strict()
      .default({ start: DEFAULT_ID_BLOCK_START }),
    privileged: z.boolean().default(false),
    prewarmSlots: z.number().int().min(0).max(1000).default(0),
    parentCgroup: z
      .object({
        name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}(\/[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}){0,3}$/, 'expected a relative cgroup path like "vzsandbox"').default('vzsandbox'),
        memoryReserveMiB: z.number().int().min(0).default(1024),
        pidsMax: z.number().int().min(0).default(32768),
      })
      .strict()
      .default({ name: 'vzsandbox', memoryReserveMiB: 1024, pidsMax: 32768 }),
    quota: diskQuota.optional(),
    packages: z.array(z.string().regex(/^[a-z0-9][a-z0-9+.-]+$/, 'expected a Debian package name')).default([]),
    startTimeoutMs: startTimeoutMs(10_000),
    sessionSources: z.array(ipv4).default([]),
    rootfsCacheDir: absolutePath.optional(),
    mirror: z.string().url().optional(),
    hostCa: z
      .object({
        keyFile: absolutePath,
        principals: z.array(z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'expected a host name')).min(1).default([SANDBOX_PRINCIPAL]),
        validity: z.string().regex(/^[A-Za-z0-9:+-]{1,64}$/, 'expected an ssh-keygen -V interval like -5m:+30d').default(DEFAULT_CERT_VALIDITY),
      })
      .strict()
      .optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const net = parseCidr(c.subnet);
    for (const key of ['gateway', 'firstAddress', 'lastAddress'] as const) {
      if (!inSubnet(ipToInt(c[key]), net)) ctx.addIssue({ code: 'custom', path: [key], message: `expected an address inside ${c.subnet}` });
    }
    const first = ipToInt(c.firstAddress);
    const last = ipToInt(c.lastAddress);
    const gw = ipToInt(c.gateway);
    if (last < first) ctx.addIssue({ code: 'custom', path: ['lastAddress'], message: `expected an address not below firstAddress ${c.firstAddress}` });
    else if (gw >= first && gw <= last) ctx.addIssue({ code: 'custom', path: ['gateway'], message: `expected an address outside ${c.firstAddress}-${c.lastAddress}` });
    if (c.limits.swapMiB !== undefined && c.limits.memoryMiB === undefined) {
      ctx.addIssue({ code: 'custom', path: ['limits', 'swapMiB'], message: 'expected memoryMiB as well (swap is limited on top of memory)' });
    }
    if (!c.privileged && last >= first) {
      const need = (last - first + 1) * ID_RANGE_SIZE;
      if (c.idmap.count !== undefined && c.idmap.count < need) {
        ctx.addIssue({ code: 'custom', path: ['idmap', 'count'], message: `expected at least ${need} (${last - first + 1} containers of ${ID_RANGE_SIZE} ids)` });
      } else if (c.idmap.start + need > 4_294_967_295) {
        ctx.addIssue({ code: 'custom', path: ['idmap', 'start'], message: `expected a start at most ${4_294_967_295 - need}: ${last - first + 1} ranges of ${ID_RANGE_SIZE} ids must fit below 2^32` });
      }
    }
    if (c.prefix.length > 0 && c.baseName.startsWith(c.prefix) && /^\d+$/.test(c.baseName.slice(c.prefix.length))) {
      ctx.addIssue({ code: 'custom', path: ['baseName'], message: 'expected a name that is not a container id (prefix followed by digits)' });
    }
  });

export interface Cidr {
  network: number;
  prefixLength: number;
}

export function parseCidr(cidr: string): Cidr {
  const [addr, len] = cidr.split('/');
  const prefixLength = Number(len);
  const mask = prefixLength === 0 ? 0 : (0xffffffff << (32 - prefixLength)) >>> 0;
  return { network: (ipToInt(addr!) & mask) >>> 0, prefixLength };
}

function inSubnet(ip: number, net: Cidr): boolean {
  const mask = net.prefixLength === 0 ? 0 : (0xffffffff << (32 - net.prefixLength)) >>> 0;
  return ((ip & mask) >>> 0) === net.network;
}

export function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0) >>> 0;
}

export function intToIp(n: number): string {
  return [n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255].join('.');
}

/**
 * The numeric suffix of a container id, or an error naming the expected shape. Addresses
 * come from this number, so creation needs no shared allocator and survives restarts.
 */
export function containerIndex(config: Pick<LxcDriverConfig, 'prefix'>, id: string): number {
  const rest = id.startsWith(config.prefix) ? id.slice(config.prefix.length) : '';
  if (!/^\d{1,9}$/.test(rest)) {
    throw new VzsbError('E_INVALID', `container id ${JSON.stringify(id)}: expected "${config.prefix}" followed by digits`);
  }
  return Number(rest);
}

export function isContainerId(config: Pick<LxcDriverConfig, 'prefix'>, name: string): boolean {
  return name.startsWith(config.prefix) && /^\d{1,9}$/.test(name.slice(config.prefix.length));
}

export function containerAddress(config: Pick<LxcDriverConfig, 'prefix' | 'firstAddress' | 'lastAddress'>, id: string): string {
  const index = containerIndex(config, id);
  const first = ipToInt(config.firstAddress);
  const last = ipToInt(config.lastAddress);
  if (first + index > last) {
    throw new VzsbError('E_INVALID', `container id ${id}: suffix ${index} is beyond the address range ${config.firstAddress}-${config.lastAddress} (at most ${last - first})`);
  }
  return intToIp(first + index);
}

/** A locally administered MAC derived from the address: a reused address keeps its MAC, so neighbours' ARP caches stay right across resets. */
export function containerMac(address: string): string {
  const n = ipToInt(address);
  const bytes = [0x02, 0x56, n >>> 24, (n >>> 16) & 255, (n >>> 8) & 255, n & 255];
  return bytes.map((b) => b.toString(16).padStart(2, '0')).join(':');
}

export type CgroupVersion = 1 | 2;

/** v2 only when the unified hierarchy is mounted at the root; hybrid hosts put limits on v1 controllers. */
export function detectCgroupVersion(cgroupRoot = '/sys/fs/cgroup'): CgroupVersion {
  return existsSync(join(cgroupRoot, 'cgroup.controllers')) ? 2 : 1;
}

/** cpu.shares onto cpu.weight with the integer formula runc and crun use. */
export function sharesToWeight(shares: number): number {
  return 1 + Math.floor(((shares - 2) * 9999) / 262142);
}

export function limitKeys(limits: LxcLimits, version: CgroupVersion): [string, string][] {
  const keys: [string, string][] = [];
  const mib = (n: number) => String(n * 1024 * 1024);
  const quota = limits.cpuPercent === undefined ? undefined : limits.cpuPercent * 1000; // of a 100 ms period
  if (version === 1) {
    if (limits.memoryMiB !== undefined) keys.push(['lxc.cgroup.memory.limit_in_bytes', mib(limits.memoryMiB)]);
    // memsw is memory + swap, and must not be set below the memory limit: it comes after it.
    if (limits.memoryMiB !== undefined && limits.swapMiB !== undefined) keys.push(['lxc.cgroup.memory.memsw.limit_in_bytes', mib(limits.memoryMiB + limits.swapMiB)]);
    if (limits.cpuShares !== undefined) keys.push(['lxc.cgroup.cpu.shares', String(limits.cpuShares)]);
    if (quota !== undefined) keys.push(['lxc.cgroup.cpu.cfs_period_us', '100000'], ['lxc.cgroup.cpu.cfs_quota_us', String(quota)]);
    if (limits.cpus !== undefined) keys.push(['lxc.cgroup.cpuset.cpus', limits.cpus]);
    if (limits.pidsMax !== undefined) keys.push(['lxc.cgroup.pids.max', String(limits.pidsMax)]);
  } else {
    if (limits.memoryMiB !== undefined) keys.push(['lxc.cgroup2.memory.max', mib(limits.memoryMiB)]);
    if (limits.swapMiB !== undefined) keys.push(['lxc.cgroup2.memory.swap.max', mib(limits.swapMiB)]);
    if (limits.cpuShares !== undefined) keys.push(['lxc.cgroup2.cpu.weight', String(sharesToWeight(limits.cpuShares))]);
    if (quota !== undefined) keys.push(['lxc.cgroup2.cpu.max', `${quota} 100000`]);
    if (limits.cpus !== undefined) keys.push(['lxc.cgroup2.cpuset.cpus', limits.cpus]);
    if (limits.pidsMax !== undefined) keys.push(['lxc.cgroup2.pids.max', String(limits.pidsMax)]);
  }
  return keys;
}

/** The host id range of a container: its numeric suffix picks its slot in the block. */
export function containerIdRange(config: Pick<LxcDriverConfig, 'prefix' | 'firstAddress' | 'lastAddress' | 'idmap' | 'privileged'>, id: string): { start: number; count: number } | undefined {
  if (config.privileged) return undefined;
  const index = containerIndex(config, id);
  const block = config.idmap ?? { start: DEFAULT_ID_BLOCK_START };
  const slots = ipToInt(config.lastAddress) - ipToInt(config.firstAddress) + 1;
  const count = block.count ?? slots * ID_RANGE_SIZE;
  if ((index + 1) * ID_RANGE_SIZE > count) {
    throw new VzsbError('E_INVALID', `container id ${id}: its id range (slot ${index}) is beyond the id block ${block.start}+${count}`);
  }
  return { start: block.start + index * ID_RANGE_SIZE, count: ID_RANGE_SIZE };
}

/** The whole id block root must be granted in /etc/subuid and /etc/subgid. */
export function idBlock(config: Pick<LxcDriverConfig, 'firstAddress' | 'lastAddress' | 'idmap'>): { start: number; count: number } {
  const block = config.idmap ?? { start: DEFAULT_ID_BLOCK_START };
  const slots = ipToInt(config.lastAddress) - ipToInt(config.firstAddress) + 1;
  return { start: block.start, count: block.count ?? slots * ID_RANGE_SIZE };
}

/** Where a container's cgroups live: limits on `container`, its processes in `container/inner`. */
export function containerCgroupDirs(config: Pick<LxcDriverConfig, 'parentCgroup'>, id: string): { monitor: string; container: string; inner: string } {
  const parent = config.parentCgroup?.name ?? 'vzsandbox';
  return { monitor: `${parent}.monitor/${id}`, container: `${parent}/${id}`, inner: CGROUP_INNER };
}

/** The cgroup namespace of a container starts here, one level below its limits. */
export const CGROUP_INNER = 'ns';

/** Device nodes an unprivileged container may use (common.conf's list, which userns.conf clears). */
const DEVICE_RULES = ['deny = a', 'allow = c *:* m', 'allow = b *:* m', 'allow = c 1:3 rwm', 'allow = c 1:5 rwm', 'allow = c 1:7 rwm', 'allow = c 1:8 rwm', 'allow = c 1:9 rwm', 'allow = c 5:0 rwm', 'allow = c 5:1 rwm', 'allow = c 5:2 rwm', 'allow = c 136:* rwm', 'allow = c 10:229 rwm'];

/** The container-specific block appended to a clone's config: network identity and limits. */
/** The clone's key directory on the host, beside its config (LxcDriver.authorizeKey writes it). */
export const KEYS_DIR = 'vzsb-keys';
/** Where the container sees it: bind-mounted read-only, named in its sshd's AuthorizedKeysFile. */
export const KEYS_MOUNT = 'etc/ssh/vzsb-keys';

/** A path in an fstab-style LXC mount entry: whitespace and backslashes as octal escapes. */
function fstabPath(path: string): string {
  return path.replace(/[\s\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function cloneConfigBlock(config: LxcDriverConfig, id: string, version: CgroupVersion, seccompProfile?: string): string {
  const address = containerAddress(config, id);
  const { prefixLength } = parseCidr(config.subnet);
  const range = containerIdRange(config, id);
  const cgroups = containerCgroupDirs(config, id);
  const devices = version === 1 ? 'lxc.cgroup.devices' : 'lxc.cgroup2.devices';
  const keys: [string, string][] = [
    // Unprivileged: Debian's userns.conf, then this container's own id range. userns.conf
    // clears the device rules (for containers that users start): the host starts ours, so
    // they come back. /sys read-only but for the network devices, as in common.conf.
    ...(range
      ? ([
          ['lxc.include', '/usr/share/lxc/config/userns.conf'],
          ['lxc.idmap', `u 0 ${range.start} ${range.count}`],
          ['lxc.idmap', `g 0 ${range.start} ${range.count}`],
          ...DEVICE_RULES.map((rule) => rule.split(' = ')).map(([k, v]) => [`${devices}.${k}`, v!] as [string, string]),
          ['lxc.mount.auto', ''],
          ['lxc.mount.auto', 'cgroup:mixed proc:mixed sys:mixed'],
        ] as [string, string][])
      : []),
    ['lxc.net.0.type', 'veth'],
    ['lxc.net.0.link', config.bridge],
    // The bridge guard binds this port name to the MAC and address below (./bridge-guard.ts).
    ['lxc.net.0.veth.pair', hostVethName(config, id)],
    ['lxc.net.0.flags', 'up'],
    ['lxc.net.0.hwaddr', containerMac(address)],
    ['lxc.net.0.ipv4.address', `${address}/${prefixLength}`],
    ['lxc.net.0.ipv4.gateway', config.gateway],
    // Limits are set on the container's cgroup; its processes and its cgroup namespace start
    // one level below, so root inside never sees the files that hold them.
    ['lxc.cgroup.dir.monitor', cgroups.monitor],
    ['lxc.cgroup.dir.container', cgroups.container],
    ['lxc.cgroup.dir.container.inner', cgroups.inner],
    ...limitKeys(config.limits, version),
    // allow_nesting: LXC skips its filter when the starting process already has one (a lab
    // hypervisor is itself an LXC container with Debian's filter); filters stack, so load ours.
    ...(seccompProfile ? ([['lxc.seccomp.allow_nesting', '1'], ['lxc.seccomp.profile', seccompProfile]] as [string, string][]) : []),
    ['lxc.mount.entry', `${fstabPath(`${config.lxcPath.replace(/\/+$/, '')}/${id}/${KEYS_DIR}`)} ${KEYS_MOUNT} none bind,ro,create=dir 0 0`],
  ];
  return [CLONE_BLOCK_MARK, ...keys.map(([k, v]) => (v === '' ? `${k} =` : `${k} = ${v}`)), CLONE_BLOCK_END].join('\n') + '\n';
}

const CLONE_BLOCK_MARK = '# vzsandbox: per-container settings';
const CLONE_BLOCK_END = '# vzsandbox: end of per-container settings';

/**
 * A clone's config without the keys cloneConfigBlock owns, so re-applying it never duplicates
 * them: the marked block as a whole, and (configs written before the end mark) its keys.
 */
export function stripOwnedKeys(configText: string): string {
  const lines = configText.split('\n');
  const out: string[] = [];
  let inBlock = false;
  for (const line of lines) {
    if (line.trim() === CLONE_BLOCK_MARK) {
      inBlock = lines.includes(CLONE_BLOCK_END);
      continue;
    }
    if (inBlock) {
      if (line.trim() === CLONE_BLOCK_END) inBlock = false;
      continue;
    }
    if (/^\s*lxc\.(net\.|cgroup2?\.(memory|cpu|cpuset|pids)\.|cgroup\.dir\.|idmap\s*=|seccomp\.(profile|allow_nesting)\s*=)/.test(line)) continue;
    if (/^\s*lxc\.mount\.entry\s*=/.test(line) && line.includes(` ${KEYS_MOUNT} `)) continue;
    out.push(line);
  }
  return out.join('\n').replace(/\n*$/, '\n');
}

/** The overlay lower directory (the base tree, or its copy for the clone's id range). */
export function overlayLowerDir(configText: string): string | undefined {
  const m = /^\s*lxc\.rootfs\.path\s*=\s*(?:overlay|overlayfs):([^:\n]+):/m.exec(configText);
  return m ? m[1] : undefined;
}

/** The overlay upper directory of a clone made by `lxc-copy -s -B overlay`, read from its config. */
export function overlayUpperDir(configText: string): string | undefined {
  const m = /^\s*lxc\.rootfs\.path\s*=\s*(?:overlay|overlayfs):([^:\n]+):([^\n]+?)\s*$/m.exec(configText);
  return m ? m[2] : undefined;
}
