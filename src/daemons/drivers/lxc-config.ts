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
}

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
   * Unprivileged containers: container uid/gid 0..count-1 are host ids start..start+count-1.
   * The host must grant root that range in /etc/subuid and /etc/subgid (LXC insists when
   * newuidmap is installed). Without it containers are privileged.
   */
  idmap?: { start: number; count: number } | undefined;
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
      })
      .strict()
      .default({}),
    idmap: z
      .object({
        start: z.number().int().min(65536).max(4_000_000_000),
        count: z.number().int().min(65536).max(1_000_000).default(65536),
      })
      .strict()
      .optional(),
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
  if (version === 1) {
    if (limits.memoryMiB !== undefined) keys.push(['lxc.cgroup.memory.limit_in_bytes', String(limits.memoryMiB * 1024 * 1024)]);
    if (limits.cpuShares !== undefined) keys.push(['lxc.cgroup.cpu.shares', String(limits.cpuShares)]);
    if (limits.pidsMax !== undefined) keys.push(['lxc.cgroup.pids.max', String(limits.pidsMax)]);
  } else {
    if (limits.memoryMiB !== undefined) keys.push(['lxc.cgroup2.memory.max', String(limits.memoryMiB * 1024 * 1024)]);
    if (limits.cpuShares !== undefined) keys.push(['lxc.cgroup2.cpu.weight', String(sharesToWeight(limits.cpuShares))]);
    if (limits.pidsMax !== undefined) keys.push(['lxc.cgroup2.pids.max', String(limits.pidsMax)]);
  }
  return keys;
}

/** The container-specific block appended to a clone's config: network identity and limits. */
/** The clone's key directory on the host, beside its config (LxcDriver.authorizeKey writes it). */
export const KEYS_DIR = 'vzsb-keys';
/** Where the container sees it: bind-mounted read-only, named in its sshd's AuthorizedKeysFile. */
export const KEYS_MOUNT = 'etc/ssh/vzsb-keys';

/** A path in an fstab-style LXC mount entry: whitespace and backslashes as octal escapes. */
function fstabPath(path: string): string {
  return path.replace(/[\s\\]/g, (c) => `\\${c.charCodeAt(0).toString(8).padStart(3, '0')}`);
}

export function cloneConfigBlock(config: LxcDriverConfig, id: string, version: CgroupVersion): string {
  const address = containerAddress(config, id);
  const { prefixLength } = parseCidr(config.subnet);
  const keys: [string, string][] = [
    ['lxc.net.0.type', 'veth'],
    ['lxc.net.0.link', config.bridge],
    // The bridge guard binds this port name to the MAC and address below (./bridge-guard.ts).
    ['lxc.net.0.veth.pair', hostVethName(config, id)],
    ['lxc.net.0.flags', 'up'],
    ['lxc.net.0.hwaddr', containerMac(address)],
    ['lxc.net.0.ipv4.address', `${address}/${prefixLength}`],
    ['lxc.net.0.ipv4.gateway', config.gateway],
    ...limitKeys(config.limits, version),
    ['lxc.mount.entry', `${fstabPath(`${config.lxcPath.replace(/\/+$/, '')}/${id}/${KEYS_DIR}`)} ${KEYS_MOUNT} none bind,ro,create=dir 0 0`],
  ];
  return ['# vzsandbox: per-container settings', ...keys.map(([k, v]) => `${k} = ${v}`)].join('\n') + '\n';
}

/** A clone's config without the keys cloneConfigBlock owns, so re-applying it never duplicates them. */
export function stripOwnedKeys(configText: string): string {
  return configText
    .split('\n')
    .filter((line) => !/^\s*lxc\.(net\.|cgroup2?\.(memory|cpu|pids)\.)/.test(line) && !(/^\s*lxc\.mount\.entry\s*=/.test(line) && line.includes(` ${KEYS_MOUNT} `)) && line.trim() !== '# vzsandbox: per-container settings')
    .join('\n')
    .replace(/\n*$/, '\n');
}

/** The overlay upper directory of a clone made by `lxc-copy -s -B overlay`, read from its config. */
export function overlayUpperDir(configText: string): string | undefined {
  const m = /^\s*lxc\.rootfs\.path\s*=\s*(?:overlay|overlayfs):([^:\n]+):([^\n]+?)\s*$/m.exec(configText);
  return m ? m[2] : undefined;
}
