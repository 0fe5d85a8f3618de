import { mkdir, readdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { run, type CommandResult, type Runner } from '../../common/exec.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { absolutePath, containerAddress, containerIndex, diskQuota, idPrefix, ipToInt, ipv4, isContainerId, startTimeoutMs } from './lxc-config.js';
import { generateHostKey, hostKeyOf, keyBlob } from './ssh-hostkey.js';
import { waitForSsh } from './ssh-ready.js';
import { SshConnections } from './ssh-connections.js';
import { keyLines, type ContainerDriver, type ContainerInfo, type DriverErrorCode, type ExecResult, type HostKey } from './types.js';

/**
 * OpenVZ containers through the vzctl/vzlist command contract (legacy vzctl 4.x and
 * OpenVZ 7 share it) or prlctl on OpenVZ 7. No OpenVZ kernel runs on our machines: this
 * driver is verified against the documented commands, exit codes and output formats with a
 * fake (test/fixtures/openvz), never against a real kernel. See docs/drivers.md.
 */
export interface OpenVzDriverConfig {
  /** 'vzctl': vzctl + vzlist (legacy 4.x, also OpenVZ 7); 'prlctl': prlctl on OpenVZ 7 */
  backend: 'vzctl' | 'prlctl';
  /** container names are `<prefix><digits>`; only those are listed */
  prefix: string;
  /** numeric CTID of the container whose suffix is 0 (CTID = ctidBase + suffix) */
  ctidBase: number;
  /** OS template cache name the containers are created from, e.g. "debian-12.0-x86_64" */
  template: string;
  /** address of suffix 0; suffix n gets firstAddress + n (venet, no bridge needed) */
  firstAddress: string;
  lastAddress: string;
  /** where `vzctl mount` makes a container's root visible: <rootDir>/<ctid> */
  rootDir: string;
  limits: OpenVzLimits;
  /** disk and inode quota per container: vzctl --diskspace and --diskinodes (vzctl backend only) */
  quota?: { diskMiB: number; inodes: number } | undefined;
  startTimeoutMs: number;
  /** addresses whose established connections to a container's sshd make it "in use": the gateways */
  sessionSources?: string[] | undefined;
}

/** The same limits as the LXC driver's, in OpenVZ's terms (kernel-enforced by its beancounters and CPU scheduler). */
export interface OpenVzLimits {
  /** RAM, MiB: vzctl --ram, prlctl --memsize */
  memoryMiB?: number | undefined;
  /** swap on top of RAM, MiB (default 0: none): vzctl --swap, prlctl --swappages (4 KiB pages) */
  swapMiB?: number | undefined;
  /** relative CPU weight: --cpuunits */
  cpuUnits?: number | undefined;
  /** CPU time at most, % of one CPU: --cpulimit */
  cpuPercent?: number | undefined;
  /** CPUs the container may run on, e.g. "0-3": --cpumask */
  cpus?: string | undefined;
  /** processes and threads: vzctl --numproc, prlctl --nproc */
  numproc?: number | undefined;
}

/** The `set` options that apply `limits` (the driver's create passes them). */
export function openVzLimitArgs(limits: OpenVzLimits, backend: OpenVzDriverConfig['backend']): string[] {
  const vz = backend === 'vzctl';
  const args: string[] = [];
  const swap = limits.swapMiB ?? 0;
  if (limits.memoryMiB !== undefined) {
    args.push(...(vz ? ['--ram', `${limits.memoryMiB}M`, '--swap', swap > 0 ? `${swap}M` : '0'] : ['--memsize', String(limits.memoryMiB), '--swappages', String(swap * 256)]));
  }
  if (limits.cpuUnits !== undefined) args.push('--cpuunits', String(limits.cpuUnits));
  if (limits.cpuPercent !== undefined) args.push('--cpulimit', String(limits.cpuPercent));
  if (limits.cpus !== undefined) args.push('--cpumask', limits.cpus);
  if (limits.numproc !== undefined) args.push(...(vz ? ['--numproc', String(limits.numproc)] : ['--nproc', String(limits.numproc)]));
  return args;
}

export const openVzDriverConfigSchema = z
  .object({
    backend: z.enum(['vzctl', 'prlctl']).default('vzctl'),
    prefix: idPrefix,
    ctidBase: z.number().int().min(101).max(2_000_000_000).default(1000),
    template: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'expected an OS template name'),
    firstAddress: ipv4,
    lastAddress: ipv4,
    rootDir: absolutePath.default('/vz/root'),
    limits: z
      .object({
        memoryMiB: z.number().int().min(16).optional(),
        cpuUnits: z.number().int().min(8).max(500_000).optional(),
        numproc: z.number().int().min(8).optional(),
        swapMiB: z.number().int().min(0).optional(),
        cpuPercent: z.number().int().min(1).max(100_000).optional(),
        cpus: z.string().regex(/^\d+(-\d+)?(,\d+(-\d+)?)*$/, 'expected a CPU list like "0-3" or "0,2"').optional(),
      })
      .strict()
      .default({}),
    quota: diskQuota.optional(),
    startTimeoutMs: startTimeoutMs(30_000),
    sessionSources: z.array(ipv4).default([]),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.quota && c.backend === 'prlctl') {
      ctx.addIssue({ code: 'custom', path: ['quota'], message: 'expected backend vzctl: prlctl sets no inode limit (OpenVZ 7 has vzctl too)' });
    }
    if (ipToInt(c.lastAddress) < ipToInt(c.firstAddress)) {
      ctx.addIssue({ code: 'custom', path: ['lastAddress'], message: `expected an address not below firstAddress ${c.firstAddress}` });
    }
  });

/**
 * The disk and inode quota as vzctl sets it: soft and hard limit alike (a soft limit below
 * the hard one would let a student exceed it for the grace time). --diskspace is in KiB
 * blocks and takes a suffix; --diskinodes is a count.
 */
export function quotaArgs(quota: OpenVzDriverConfig['quota']): string[] {
  if (!quota) return [];
  return ['--diskspace', `${quota.diskMiB}M:${quota.diskMiB}M`, '--diskinodes', `${quota.inodes}:${quota.inodes}`];
}

/** vzctl exit codes (include/vzerror.h; legacy 4.x and OpenVZ 7 agree on these). */
export const VZ_EXIT = {
  LOCKED: 9,
  NO_CONFIG: 14, // "Container config file does not exist"
  NOT_RUNNING: 31,
  RUNNING: 32,
  NOT_MOUNTED: 40,
  MOUNTED: 41,
  NO_PRIVATE: 43,
  PRIVATE_EXISTS: 44,
  TEMPLATE_NOT_FOUND: 91,
} as const;

export function vzctlErrorCode(exitCode: number): DriverErrorCode {
  switch (exitCode) {
    case VZ_EXIT.LOCKED:
      return 'E_DRIVER_LOCKED';
    case VZ_EXIT.NO_CONFIG:
    case VZ_EXIT.NO_PRIVATE:
      return 'E_DRIVER_NOT_FOUND';
    case VZ_EXIT.PRIVATE_EXISTS:
      return 'E_DRIVER_EXISTS';
    case VZ_EXIT.TEMPLATE_NOT_FOUND:
      return 'E_DRIVER_NO_BASE';
    default:
      return 'E_DRIVER_RUNTIME';
  }
}

/**
 * prlctl reports failures by message, with exit codes that are not part of its documented
 * contract; these patterns are the messages OpenVZ 7 prints for the cases the pool handles.
 */
export function prlctlErrorCode(stderr: string): DriverErrorCode {
  if (/already exists/i.test(stderr)) return 'E_DRIVER_EXISTS';
  if (/is locked|locked by another/i.test(stderr)) return 'E_DRIVER_LOCKED';
  if (/(template|ostemplate).*(not found|does not exist)|no such (os )?template/i.test(stderr)) return 'E_DRIVER_NO_BASE';
  if (/(not found|could not be found|does not exist|unable to find)/i.test(stderr)) return 'E_DRIVER_NOT_FOUND';
  return 'E_DRIVER_RUNTIME';
}

/** One entry of `vzlist -a -j` (fields as vzlist.c prints them; only those we read). */
interface VzlistEntry {
  ctid: number | string;
  name: string | null;
  status: string;
  ip: string[];
  description: string | null;
}

/** One entry of `prlctl list -a -i -j`-style output reduced by `-o`: we ask for these columns. */
interface PrlctlEntry {
  uuid?: string;
  name: string;
  status: string;
  ip_configured?: string;
  description?: string;
}

export interface OpenVzDriverDeps {
  config: OpenVzDriverConfig;
  /** runs vzctl, vzlist, prlctl (tests pass a runner that runs the fake) */
  runner?: Runner;
  /** the host's connection-tracking table, for session liveness (tests pass a recorded one) */
  connections?: SshConnections;
  /** where host key files are made before they are copied into a container (host-only) */
  scratchDir?: string;
  logger?: Logger;
}

interface Invocation {
  file: string;
  args: string[];
}

export class OpenVzDriver implements ContainerDriver {
  readonly name = 'openvz';
  private readonly config: OpenVzDriverConfig;
  private readonly runner: Runner;
  private readonly connections: SshConnections;
  private readonly scratchDir: string;
  private readonly log: Logger;

  constructor(deps: OpenVzDriverDeps) {
    this.config = deps.config;
    this.runner = deps.runner ?? run;
    this.connections = deps.connections ?? new SshConnections({ sources: deps.config.sessionSources ?? [], runner: this.runner });
    this.scratchDir = deps.scratchDir ?? tmpdir();
    this.log = (deps.logger ?? silentLogger).child({ driver: 'openvz', backend: deps.config.backend });
  }

  /** The CTID (vzctl) or name (prlctl) the runtime knows this container by. */
  ctid(id: string): number {
    containerAddress(this.config, id); // validates the id and its range
    return this.config.ctidBase + containerIndex(this.config, id);
  }

  /** What the backend's commands name the container by: the CTID for vzctl, the name for prlctl. */
  private ref(id: string): string {
    const ctid = this.ctid(id);
    return this.config.backend === 'vzctl' ? String(ctid) : id;
  }

  /** The template is checked by the runtime at create (exit 91); there is nothing to build. */
  async prepare(): Promise<void> {
    await this.list();
  }

  async list(): Promise<ContainerInfo[]> {
    return (await this.entries()).map(({ id, running, address }) => ({ id, running, address }));
  }

  private async entries(): Promise<(ContainerInfo & { ctid: string; description: string | undefined })[]> {
    const vz = this.config.backend === 'vzctl';
    const inv: Invocation = vz
      ? { file: 'vzlist', args: ['-a', '-j'] }
      : { file: 'prlctl', args: ['list', '-a', '-j', '-o', 'uuid,name,status,ip_configured,description'] };
    const result = await this.invoke(inv);
    if (result.failed) {
      // vzlist exits 1 with "Container(s) not found" when there are none at all.
      if (vz && /not found/i.test(result.stderr)) return [];
      throw this.failure(result, 'listing containers');
    }
    let parsed: unknown;
    try {
      parsed = JSON.parse(result.stdout || '[]');
    } catch (e) {
      throw new VzsbError('E_DRIVER_RUNTIME', `${inv.file} printed something that is not JSON`, { details: result.stdout.slice(0, 2000), cause: e });
    }
    if (!Array.isArray(parsed)) throw new VzsbError('E_DRIVER_RUNTIME', `${inv.file} did not print a JSON list`);
    const out = [];
    for (const raw of parsed) {
      const e = vz ? fromVzlist(raw as VzlistEntry) : fromPrlctl(raw as PrlctlEntry);
      if (!e.name || !isContainerId(this.config, e.name)) continue;
      let address = e.ip;
      if (!address) {
        try {
          address = containerAddress(this.config, e.name);
        } catch {
          address = undefined;
        }
      }
      out.push({ id: e.name, running: e.status === 'running', address, ctid: e.ctid, description: e.description });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  private async entry(id: string) {
    this.ctid(id);
    const found = (await this.entries()).find((e) => e.id === id);
    if (!found) throw new VzsbError('E_DRIVER_NOT_FOUND', `container ${id} does not exist`);
    return found;
  }

  async create(id: string): Promise<ContainerInfo> {
    const ctid = this.ctid(id);
    const address = containerAddress(this.config, id);
    const vz = this.config.backend === 'vzctl';
    const created = await this.invoke(
      vz
        ? { file: 'vzctl', args: ['create', String(ctid), '--ostemplate', this.config.template, '--name', id, '--hostname', id, '--ipadd', address] }
        : { file: 'prlctl', args: ['create', id, '--vmtype', 'ct', '--ostemplate', this.config.template] },
    );
    if (created.failed) throw this.failure(created, `creating ${id}`);
    // Host keys go in before the first start, through the mounted root of a container that
    // has never run: nothing in it is a student's yet.
    const key = await generateHostKey(this.runner, this.scratchDir, `root@${id}`);
    await this.must(vz ? { file: 'vzctl', args: ['mount', String(ctid)] } : { file: 'prlctl', args: ['mount', id] }, `mounting ${id}`, [VZ_EXIT.MOUNTED]);
    try {
      const root = join(this.config.rootDir, vz ? String(ctid) : (await this.entry(id)).ctid);
      const sshDir = join(root, 'etc', 'ssh');
      await mkdir(sshDir, { recursive: true, mode: 0o755 });
      for (const name of await readdir(sshDir)) {
        if (/^ssh_host_.*_key(\.pub)?$/.test(name)) await unlink(join(sshDir, name));
      }
      await writeFile(join(sshDir, 'ssh_host_ed25519_key'), key.privateKey, { mode: 0o600 });
      await writeFile(join(sshDir, 'ssh_host_ed25519_key.pub'), key.publicKey + '\n', { mode: 0o644 });
    } finally {
      await this.must(vz ? { file: 'vzctl', args: ['umount', String(ctid)] } : { file: 'prlctl', args: ['umount', id] }, `unmounting ${id}`, [VZ_EXIT.NOT_MOUNTED]);
    }
    // The public key is kept in the container's own config (host side), where list() reads it.
    const set = vz
      ? ['set', String(ctid), '--description', key.publicKey, '--save']
      : ['set', id, '--description', key.publicKey, '--hostname', id, '--ipadd', address];
    set.push(...openVzLimitArgs(this.config.limits, this.config.backend));
    set.push(...quotaArgs(this.config.quota));
    await this.must({ file: vz ? 'vzctl' : 'prlctl', args: set }, `configuring ${id}`);
    this.log.debug('container_created', { container: id, ctid, address });
    return { id, running: false, address };
  }

  /** Addresses and CTIDs are derived from the id, so start/stop/destroy need no vzlist round trip. */
  async start(id: string): Promise<void> {
    const vz = this.config.backend === 'vzctl';
    await this.must(vz ? { file: 'vzctl', args: ['start', this.ref(id)] } : { file: 'prlctl', args: ['start', id] }, `starting ${id}`, [VZ_EXIT.RUNNING]);
    await waitForSsh({
      host: containerAddress(this.config, id),
      timeoutMs: this.config.startTimeoutMs,
      what: `container ${id}`,
      giveUp: async () => {
        const listed = await this.list().catch(() => undefined); // a failed vzlist is no reason to stop waiting
        return listed && listed.find((x) => x.id === id)?.running === false ? 'the container stopped' : undefined;
      },
    });
  }

  async stop(id: string): Promise<void> {
    const vz = this.config.backend === 'vzctl';
    // `vzctl stop` of a stopped container exits 0 by contract; 31 is tolerated as well.
    await this.must(vz ? { file: 'vzctl', args: ['stop', this.ref(id), '--fast'] } : { file: 'prlctl', args: ['stop', id, '--kill'] }, `stopping ${id}`, [VZ_EXIT.NOT_RUNNING]);
  }

  async destroy(id: string): Promise<void> {
    try {
      await this.stop(id);
    } catch (e) {
      if (e instanceof VzsbError && e.code === 'E_DRIVER_NOT_FOUND') return;
      throw e;
    }
    if (this.config.backend === 'vzctl') {
      const ctid = this.ref(id);
      let result = await this.invoke({ file: 'vzctl', args: ['destroy', ctid] });
      if (result.exitCode === VZ_EXIT.MOUNTED) {
        // A leftover mount (a crash between mount and umount in create) blocks destroy.
        await this.invoke({ file: 'vzctl', args: ['umount', ctid] });
        result = await this.invoke({ file: 'vzctl', args: ['destroy', ctid] });
      }
      if (result.failed && vzctlErrorCode(result.exitCode) !== 'E_DRIVER_NOT_FOUND') throw this.failure(result, `destroying ${id}`);
    } else {
      const result = await this.invoke({ file: 'prlctl', args: ['delete', id] });
      if (result.failed && prlctlErrorCode(result.stderr) !== 'E_DRIVER_NOT_FOUND') throw this.failure(result, `destroying ${id}`);
    }
  }

  /** vzctl exec2 / prlctl exec join their arguments into one shell command line: quote each. */
  async exec(id: string, argv: readonly string[], input?: string): Promise<ExecResult> {
    if (argv.length === 0) throw new VzsbError('E_INVALID', 'exec: expected a command, got an empty argv');
    const ref = this.ref(id);
    const vz = this.config.backend === 'vzctl';
    const result = await this.invoke(
      vz ? { file: 'vzctl', args: ['exec2', ref, ...argv.map(shellQuote)] } : { file: 'prlctl', args: ['exec', ref, ...argv.map(shellQuote)] },
      { input: input ?? '', timeoutMs: 120_000 },
    );
    const runtimeFailed = vz
      ? (result.exitCode === VZ_EXIT.NOT_RUNNING || result.exitCode === VZ_EXIT.NO_CONFIG) && /^Container .*(not running|does not exist)/m.test(result.stderr)
      : result.exitCode !== 0 && /^Failed to exec/m.test(result.stderr);
    if (runtimeFailed) throw this.failure(result, `exec in ${id}`);
    if (result.timedOut) throw new VzsbError('E_DRIVER_RUNTIME', `exec in ${id} timed out`);
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  /**
   * Established connections from a gateway to the container's sshd, in the host's (VE0's)
   * connection-tracking table: venet traffic is routed through the host, and venet drops what
   * a container sends from an address not its own. Nothing inside the container is asked or
   * trusted (vzctl exec runs in it; its /proc and process titles are the student's to fake).
   * VE0 must track connections: vzctl's modprobe.d sets nf_conntrack ip_conntrack_disable_ve0=1,
   * which docs/drivers.md says to turn off.
   */
  async sessionCount(id: string): Promise<number> {
    const entry = await this.entry(id);
    if (!entry.running) return 0;
    return this.connections.count(containerAddress(this.config, id));
  }

  /** Written from inside the running container (vzctl exec2), so a student's symlink resolves there, never on the host. */
  async authorizeKey(id: string, publicKeys: string | readonly string[]): Promise<void> {
    const lines = keyLines(publicKeys);
    for (const line of lines) keyBlob(line);
    // A stopped container fails in exec (vzctl 31): it is started before a key is authorized.
    const script =
      'set -e; umask 077; if [ -L /root/.ssh ] || [ ! -d /root/.ssh ]; then rm -rf /root/.ssh; mkdir /root/.ssh; fi; chmod 700 /root/.ssh; ' +
      'cat > /root/.ssh/authorized_keys.vzsb-new; mv -f /root/.ssh/authorized_keys.vzsb-new /root/.ssh/authorized_keys';
    const result = await this.exec(id, ['/bin/sh', '-c', script], lines.map((l) => l + '\n').join(''));
    if (result.exitCode !== 0) {
      throw new VzsbError('E_DRIVER_RUNTIME', `cannot write root's authorized_keys in ${id} (exit ${result.exitCode})`, { details: result.stderr });
    }
  }

  async hostKey(id: string): Promise<HostKey> {
    const entry = await this.entry(id);
    if (!entry.description) throw new VzsbError('E_DRIVER_NOT_FOUND', `container ${id} has no recorded host key`);
    return hostKeyOf(entry.description);
  }

  private invoke(inv: Invocation, options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    return this.runner(inv.file, inv.args, { timeoutMs: 300_000, ...options });
  }

  private async must(inv: Invocation, doing: string, okCodes: number[] = []): Promise<void> {
    const result = await this.invoke(inv);
    if (!result.failed) return;
    if (inv.file !== 'prlctl' && okCodes.includes(result.exitCode)) return;
    if (inv.file === 'prlctl' && okCodes.length > 0 && /already (running|mounted)|is not (running|mounted)/i.test(result.stderr)) return;
    throw this.failure(result, doing);
  }

  private failure(result: CommandResult, doing: string): VzsbError {
    const code = this.config.backend === 'prlctl' ? prlctlErrorCode(result.stderr) : vzctlErrorCode(result.exitCode);
    const tail = result.stderr.trim().split('\n').slice(-2).join(' ');
    const why = result.timedOut ? 'timed out' : `exit ${result.exitCode}`;
    return new VzsbError(code, `${doing} failed (${why})${tail ? `: ${tail}` : ''}`, { details: `${result.command}\n${result.stderr}` });
  }
}

function fromVzlist(e: VzlistEntry) {
  return {
    ctid: String(e.ctid),
    name: e.name,
    status: e.status,
    ip: Array.isArray(e.ip) && e.ip[0] ? e.ip[0].replace(/\/\d+$/, '') : undefined,
    description: e.description ?? undefined,
  };
}

function fromPrlctl(e: PrlctlEntry) {
  const ip = e.ip_configured && e.ip_configured !== '-' ? e.ip_configured.split(/[ ,]/)[0]!.replace(/\/\d+$/, '') : undefined;
  return { ctid: (e.uuid ?? e.name).replace(/[{}]/g, ''), name: e.name, status: e.status, ip, description: e.description || undefined };
}

export function shellQuote(arg: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`;
}
