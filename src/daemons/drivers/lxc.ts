import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, chown, lchown, lstat, mkdir, open, readFile, readdir, rename, rm, stat, statfs, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import { run, type CommandResult, type Runner } from '../../common/exec.js';
import { silentLogger, type Logger } from '../../common/log.js';
import { ensureRootfs, rootfsKey } from '../../common/rootfs.js';
import {
  BASE_PACKAGES,
  cloneConfigBlock,
  containerAddress,
  containerIdRange,
  detectCgroupVersion,
  idBlock,
  ipToInt,
  isContainerId,
  KEYS_DIR,
  KEYS_MOUNT,
  overlayLowerDir,
  overlayUpperDir,
  stripOwnedKeys,
  type CgroupVersion,
  type LxcDriverConfig,
} from './lxc-config.js';
import { signHostKey } from './host-cert.js';
import { checkVolumeSupport, ensureVolumeMounted, makeVolume, unmountVolume, volumeTemplate } from './lxc-volume.js';
import { applyParentCgroup, parentCgroupPlan, readHostFacts } from './lxc-cgroup.js';
import { SECCOMP_FILE, seccompProfile } from './lxc-seccomp.js';
import { checkSubIds } from './subids.js';
import { generateHostKey, hostKeyOf, keyBlob } from './ssh-hostkey.js';
import { waitForSsh } from './ssh-ready.js';
import { applyGuard } from './bridge-guard.js';
import { SshConnections } from './ssh-connections.js';
import { keyLines, type ContainerDriver, type ContainerInfo, type DriverErrorCode, type DriverHealth, type ExecResult, type HostKey } from './types.js';

export interface LxcDriverDeps {
  config: LxcDriverConfig;
  runner?: Runner;
  logger?: Logger;
  /** the host's /proc (tests may point elsewhere) */
  procRoot?: string;
  /** the host's cgroup mount root */
  cgroupRoot?: string;
  /** overrides detection of the cgroup version used for limit keys */
  cgroupVersion?: CgroupVersion;
  /** the host's /sys/class/net */
  sysClassNet?: string;
  /** progress lines while the base is built (first prepare only) */
  progress?: (line: string) => void;
  /** the host's connection-tracking table, for session liveness (tests may replace it) */
  connections?: SshConnections;
}

/** The base's init: no service manager, nothing but sshd in the foreground (starts in tens of ms). */
const INIT_SCRIPT = `#!/bin/sh
# vzsandbox container init: LXC has already configured the network; run only sshd.
mkdir -p /run/sshd
chmod 0755 /run/sshd
exec /usr/sbin/sshd -D -e 2>>/var/log/sshd.log
`;

/** Root may log in with a key only; the host key is the per-clone ed25519 key written at create. */
const SSHD_CONFIG = `# vzsandbox container sshd: root by key only, no passwords
HostKey /etc/ssh/ssh_host_ed25519_key
# Signed by the sandbox host CA when the hypervisor has one (students trust the CA, not each key).
HostCertificate /etc/ssh/ssh_host_ed25519_key-cert.pub
PermitRootLogin prohibit-password
PubkeyAuthentication yes
# ${KEYS_MOUNT}: the host's per-clone key directory, bind-mounted read-only (authorizeKey writes it).
AuthorizedKeysFile .ssh/authorized_keys /${KEYS_MOUNT}/%u
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitEmptyPasswords no
UsePAM no
UseDNS no
X11Forwarding no
PrintMotd no
PrintLastLog no
# A connection whose gateway side is gone ends within a minute, so its lease does not outlive it;
# the gateway's ssh2 client answers the probes. sshd 9.2 (Debian 12) sends one only after a quiet
# poll longer than the interval, so they come 20 s apart: the third unanswered one ends it at 60 s.
ClientAliveInterval 10
ClientAliveCountMax 2
AcceptEnv LANG LC_*
Subsystem sftp /usr/lib/openssh/sftp-server
`;

/** Bumped when the way the base is built changes, so existing bases are rebuilt. */
const BASE_FORMAT = 3;
const HASH_FILE = 'vzsb-base.hash';
const HOST_KEY_FILE = 'vzsb-host-key.pub';
/** Present from create() until the first start(): while it exists the upper layer holds nothing of a student's. */
const PRISTINE_MARKER = 'vzsb-never-started';
/** The pool's lease record, beside the clone's config (see writeLeaseRecord). */
const LEASE_RECORD = 'vzsb-lease.json';
const EXEC_ENV = ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin', 'HOME=/root', 'LANG=C.UTF-8'];
const EXEC_TIMEOUT_MS = 120_000;

/**
 * Containers as LXC 5 system containers: copy-on-write overlay clones of one stopped base
 * whose init is sshd itself, on an existing bridge with addresses derived from the id.
 * See docs/drivers.md for the layout and the security choices.
 */
export class LxcDriver implements ContainerDriver {
  readonly name = 'lxc';
  private readonly config: LxcDriverConfig;
  private readonly runner: Runner;
  private readonly log: Logger;
  private readonly procRoot: string;
  private readonly cgroupRoot: string;
  private readonly cgroupVersion: CgroupVersion;
  private readonly progress: ((line: string) => void) | undefined;
  private readonly sysClassNet: string;
  private recordSeq = 0;
  private preparing: Promise<void> | undefined;
  private readonly connections: SshConnections;
  /** slot lower layers being made, by path */
  private readonly slotBuilds = new Map<string, Promise<string>>();
  /** the base tree whose slots the prewarm is making */
  private prewarmed: string | undefined;
  /** whether the kernel accounts swap per cgroup (known after prepare; assumed until then) */
  private swapAccounting = true;

  constructor(deps: LxcDriverDeps) {
    this.config = deps.config;
    this.runner = deps.runner ?? run;
    // The host's own bridge address counts too: a container cannot send from it (the guard).
    this.connections = deps.connections ?? new SshConnections({ sources: [deps.config.gateway, ...(deps.config.sessionSources ?? [])], runner: this.runner });
    this.log = (deps.logger ?? silentLogger).child({ driver: 'lxc' });
    this.procRoot = deps.procRoot ?? '/proc';
    this.cgroupRoot = deps.cgroupRoot ?? '/sys/fs/cgroup';
    this.cgroupVersion = deps.cgroupVersion ?? detectCgroupVersion(this.cgroupRoot);
    this.progress = deps.progress;
    this.sysClassNet = deps.sysClassNet ?? '/sys/class/net';
  }

  private get packages(): string[] {
    return [...new Set([...BASE_PACKAGES, ...this.config.packages])].sort();
  }

  private dir(name: string): string {
    return join(this.config.lxcPath, name);
  }

  private baseDefinitionHash(): string {
    const definition = JSON.stringify({
      format: BASE_FORMAT,
      rootfs: rootfsKey('bookworm', this.packages),
      init: INIT_SCRIPT,
      sshd: SSHD_CONFIG,
      config: this.baseConfig('ROOTFS'),
      seccomp: seccompProfile(),
    });
    return createHash('sha256').update(definition).digest('hex');
  }

  /** Each base definition gets its own tree, so clones made from an older one keep their lower layer. */
  private baseRootfs(hash: string): string {
    return join(this.dir(this.config.baseName), `rootfs-${hash.slice(0, 16)}`);
  }

  /** Unprivileged containers unless the explicit `privileged` option says otherwise. */
  private get unprivileged(): boolean {
    return !this.config.privileged;
  }

  private get seccompPath(): string {
    return join(this.dir(this.config.baseName), SECCOMP_FILE);
  }

  /** The base is never started: id maps, cgroups and the seccomp profile are each clone's (cloneConfigBlock). */
  private baseConfig(rootfs: string): string {
    return [
      '# vzsandbox base container: clones are made from it; it is never started',
      'lxc.include = /usr/share/lxc/config/common.conf',
      // lxcfs is not used; its post-stop hook sleeps 0.5 s on every stop, which a reset cannot afford.
      'lxc.hook.mount =',
      'lxc.hook.post-stop =',
      'lxc.arch = linux64',
      `lxc.uts.name = ${this.config.baseName}`,
      `lxc.rootfs.path = dir:${rootfs}`,
      'lxc.init.cmd = /sbin/vzsb-init',
      'lxc.tty.max = 0',
      'lxc.pty.max = 256',
      'lxc.console.path = none',
      '',
    ].join('\n');
  }

  prepare(): Promise<void> {
    // One build at a time in this process; concurrent callers share it.
    this.preparing ??= this.prepareBase()
      .then(() => this.prewarm())
      .finally(() => {
        this.preparing = undefined;
      });
    return this.preparing;
  }

  private async prepareBase(): Promise<void> {
    if (this.config.privileged) {
      this.log.warn('PRIVILEGED_CONTAINERS', {
        message: 'driver.privileged is set: container root is host root. A student can take over this host (see docs/drivers.md). Never use this for untrusted students.',
      });
    } else {
      const block = idBlock(this.config);
      await checkSubIds(block);
      this.log.info('id_block', { start: block.start, count: block.count, perContainer: 65536 });
    }
    await this.checkBridge();
    // Before any container of this daemon runs: no frame from a spoofed MAC or address.
    await applyGuard(this.runner, this.config);
    await this.checkLxcPath();
    await this.prepareParentCgroup();
    const base = this.dir(this.config.baseName);
    if (this.config.quota) {
      await checkVolumeSupport(this.runner);
      await mkdir(base, { recursive: true });
      await volumeTemplate(this.runner, base, this.config.quota);
    }
    const hash = this.baseDefinitionHash();
    const current = await readFile(join(base, HASH_FILE), 'utf8').catch(() => '');
    if (current.trim() === hash) return;
    const started = performance.now();
    const rootfs = await ensureRootfs({
      packages: this.packages,
      cacheDir: this.config.rootfsCacheDir,
      mirror: this.config.mirror,
      progress: this.progress,
      runner: this.runner,
    });
    // Unprivileged containers' root must traverse to its rootfs: o+x, never o+r.
    await mkdir(base, { recursive: true });
    await chmod(base, this.unprivileged ? 0o711 : 0o770);
    // A tree is complete once renamed from .building; one of this definition is reused.
    const tree = this.baseRootfs(hash);
    if (!existsSync(tree)) {
      const building = `${tree}.building`;
      await rm(building, { recursive: true, force: true });
      await this.must(await this.runner('cp', ['-a', rootfs, building]), 'E_DRIVER_RUNTIME', 'copying the root filesystem into the base');
      await customizeBaseRootfs(building);
      await rename(building, tree);
    }
    // The config, then the hash, each replaced by rename: a crash leaves the old base usable
    // or the new one complete, and a half-built tree is removed by the next prepare.
    await replaceFile(this.seccompPath, seccompProfile(), 0o644);
    await replaceFile(join(base, 'config'), this.baseConfig(tree), 0o640);
    await replaceFile(join(base, HASH_FILE), hash + '\n', 0o644);
    await this.removeUnusedBaseTrees(tree);
    this.log.info('base_built', { base: this.config.baseName, durationMs: Math.round(performance.now() - started) });
  }

  /**
   * Older base trees stay while a container's config names one as its lower layer (a leased
   * container must survive a daemon upgrade that changed the base); once the last such clone
   * is destroyed, the next prepare removes the tree.
   */
  private async removeUnusedBaseTrees(current: string): Promise<void> {
    const base = this.dir(this.config.baseName);
    const inUse = new Set<string>([current]);
    for (const entry of await readdir(this.config.lxcPath, { withFileTypes: true })) {
      if (!entry.isDirectory() || entry.name === this.config.baseName) continue;
      const text = await readFile(join(this.config.lxcPath, entry.name, 'config'), 'utf8').catch(() => '');
      const lower = /^\s*lxc\.rootfs\.path\s*=\s*(?:overlay|overlayfs):([^:\n]+):/m.exec(text)?.[1];
      // A slot's shifted copy keeps itself and the tree it was copied from.
      if (lower) inUse.add(lower).add(lower.replace(/-u\d+$/, ''));
    }
    for (const name of await readdir(base)) {
      const path = join(base, name);
      // The current tree's shifted copies stay for the next clone of their slot.
      if (path.startsWith(`${current}-u`) && !path.endsWith('.building')) continue;
      if (/^rootfs(-[0-9a-f]{16}(-u\d+)?(\.building)?)?$/.test(name) && !inUse.has(path)) {
        await rm(path, { recursive: true, force: true });
        this.log.info('base_tree_removed', { tree: path });
      }
    }
  }

  /**
   * The bridge is deployment's; it must exist. Without a fixed MAC a Linux bridge takes the
   * lowest MAC of its ports, which changes as clones come and go: containers then keep
   * sending to a stale gateway MAC and sshd answers late (seen as 1-2 s stalls).
   */
  private async checkBridge(): Promise<void> {
    const sys = join(this.sysClassNet, this.config.bridge);
    if (this.config.manageBridge && !existsSync(sys)) await this.createBridge();
    const assign = await readFile(join(sys, 'addr_assign_type'), 'utf8').catch(() => undefined);
    if (assign === undefined || !existsSync(join(sys, 'bridge'))) {
      throw driverError('E_DRIVER_RUNTIME', `bridge ${this.config.bridge} does not exist on this host (deployment creates it)`);
    }
    if (assign.trim() !== '3') {
      this.log.warn('bridge_mac_not_fixed', { bridge: this.config.bridge, hint: 'set a fixed MAC address on the bridge' });
    }
  }

  /**
   * With `manageBridge`, the daemon makes its bridge at start (so it comes back after a reboot
   * without any network configuration): a fixed locally administered MAC derived from the
   * subnet, the gateway address, up. A bridge that exists is left as it is.
   */
  private async createBridge(): Promise<void> {
    const { bridge, gateway, subnet } = this.config;
    const prefix = subnet.split('/')[1];
    const octets = gateway.split('.').map(Number);
    const mac = ['02', '76', '7a', ...octets.slice(1).map((o) => o.toString(16).padStart(2, '0'))].join(':');
    for (const args of [
      ['link', 'add', 'name', bridge, 'address', mac, 'type', 'bridge', 'forward_delay', '0'],
      ['addr', 'add', `${gateway}/${prefix}`, 'dev', bridge],
      ['link', 'set', bridge, 'up'],
    ]) {
      await this.must(await this.runner('ip', args), 'E_DRIVER_RUNTIME', `creating bridge ${bridge} (ip ${args.join(' ')})`);
    }
    this.log.info('bridge_created', { bridge, gateway, mac });
  }

  /** The parent cgroup of all containers, with the limits for all of them together. */
  private async prepareParentCgroup(): Promise<void> {
    const parent = this.config.parentCgroup ?? { name: 'vzsandbox', memoryReserveMiB: 1024, pidsMax: 32768 };
    const facts = await readHostFacts(this.cgroupRoot, this.cgroupVersion, this.procRoot);
    const plan = parentCgroupPlan(parent, this.cgroupVersion, facts);
    await applyParentCgroup(this.cgroupRoot, plan);
    const swapFile = this.cgroupVersion === 1 ? join(this.cgroupRoot, 'memory', 'memory.memsw.limit_in_bytes') : join(this.cgroupRoot, parent.name, 'memory.swap.max');
    this.swapAccounting = existsSync(swapFile);
    if (!this.swapAccounting && this.config.limits.swapMiB !== undefined) {
      this.log.warn('swap_not_limited', { message: `this kernel does not account swap (${swapFile} is missing): limits.swapMiB is not applied` });
    }
    this.log.info('parent_cgroup', { cgroup: parent.name, version: this.cgroupVersion, limits: plan.writes.filter((w) => /(memory\.(limit_in_bytes|max)|pids\.max)$/.test(w.path)) });
  }

  /**
   * The lower layer of an unprivileged clone: a copy of the base tree shifted to the clone's
   * id range, made by the first create of its slot and reused by every later one (a reset
   * copies and chowns nothing). Privileged clones use the base tree itself.
   */
  private async slotLower(baseTree: string, id: string): Promise<string> {
    const range = containerIdRange(this.config, id);
    if (!range) return baseTree;
    const tree = `${baseTree}-u${range.start}`;
    if (existsSync(tree)) return tree;
    // One build per tree: a create and the prewarm asking for the same slot share it.
    let build = this.slotBuilds.get(tree);
    if (!build) {
      build = this.buildSlotTree(baseTree, tree, range.start, id).finally(() => this.slotBuilds.delete(tree));
      this.slotBuilds.set(tree, build);
    }
    return build;
  }

  private async buildSlotTree(baseTree: string, tree: string, start: number, id: string): Promise<string> {
    const started = performance.now();
    const building = `${tree}.building`;
    await rm(building, { recursive: true, force: true });
    await this.must(await this.runner('cp', ['-a', '--reflink=auto', baseTree, building]), 'E_DRIVER_RUNTIME', `copying the base for id range ${start}`);
    await shiftOwnership(building, start);
    await rename(building, tree);
    this.log.info('slot_base_made', { container: id, idStart: start, durationMs: Math.round(performance.now() - started) });
    return tree;
  }

  /**
   * After prepare, the lower layers of slots 1..prewarmSlots (the numbers the pool uses) are made in the
   * background, one at a time, so that a lease that has to build a container for a slot not
   * used before does not wait for a copy of the base.
   */
  private prewarm(): void {
    const count = this.config.prewarmSlots ?? 0;
    if (!this.unprivileged || count <= 0) return;
    const baseTree = this.baseRootfs(this.baseDefinitionHash());
    if (this.prewarmed === baseTree) return;
    this.prewarmed = baseTree;
    // The pool numbers containers from 1; suffix 0 is a valid slot it does not use.
    const last = Math.min(count, ipToInt(this.config.lastAddress) - ipToInt(this.config.firstAddress));
    void (async () => {
      for (let n = 1; n <= last; n++) {
        if (this.prewarmed !== baseTree) return; // a newer base took over
        await this.slotLower(baseTree, `${this.config.prefix}${n}`).catch((err: unknown) => this.log.warn('slot_prewarm_failed', { slot: n, error: err }));
      }
    })();
  }

  private async checkLxcPath(): Promise<void> {
    await mkdir(this.config.lxcPath, { recursive: true });
    if (!this.unprivileged) return;
    const mode = (await stat(this.config.lxcPath)).mode;
    if ((mode & 0o001) === 0) {
      throw new VzsbError('E_INVALID', `lxcPath ${this.config.lxcPath}: unprivileged containers need it traversable by others (chmod o+x)`);
    }
  }

  async list(): Promise<ContainerInfo[]> {
    if (!existsSync(this.config.lxcPath)) return [];
    const result = await this.lxc('lxc-ls', ['-f', '-F', 'NAME,STATE']);
    await this.must(result, 'E_DRIVER_RUNTIME', 'listing containers');
    const rows = result.stdout.trim().split('\n').slice(1);
    const out: ContainerInfo[] = [];
    for (const row of rows) {
      const [name, state] = row.trim().split(/\s+/);
      if (!name || !isContainerId(this.config, name)) continue;
      let address: string | undefined;
      try {
        address = containerAddress(this.config, name);
      } catch {
        address = undefined; // a leftover outside the configured range: listed so the pool can destroy it
      }
      out.push({ id: name, running: state === 'RUNNING', address });
    }
    return out.sort((a, b) => a.id.localeCompare(b.id));
  }

  async create(id: string): Promise<ContainerInfo> {
    const address = containerAddress(this.config, id);
    const dir = this.dir(id);
    if (existsSync(dir)) throw driverError('E_DRIVER_EXISTS', `container ${id} already exists`);
    if (!existsSync(join(this.dir(this.config.baseName), HASH_FILE))) {
      throw driverError('E_DRIVER_NO_BASE', `base container ${this.config.baseName} is missing: run prepare first`);
    }
    const copy = await this.lxc('lxc-copy', ['-n', this.config.baseName, '-N', id, '-s', '-B', 'overlay']);
    if (copy.failed) {
      if (/exists/i.test(copy.stderr)) throw driverError('E_DRIVER_EXISTS', `container ${id} already exists`, copy.stderr);
      await this.must(copy, 'E_DRIVER_RUNTIME', `cloning ${id}`);
    }
    const configFile = join(dir, 'config');
    let text = await readFile(configFile, 'utf8');
    const upper = overlayUpperDir(text);
    const lower = overlayLowerDir(text);
    if (!upper || !lower) throw driverError('E_DRIVER_RUNTIME', `clone ${id} is not an overlay clone`, text);
    await this.attachQuota(dir, upper);
    const range = containerIdRange(this.config, id);
    if (range) {
      const slot = await this.slotLower(lower, id);
      text = text.replace(/^(\s*lxc\.rootfs\.path\s*=\s*(?:overlay|overlayfs):)[^:\n]+:/m, (_, head: string) => `${head}${slot}:`);
    }
    const config = this.swapAccounting ? this.config : { ...this.config, limits: { ...this.config.limits, swapMiB: undefined } };
    await writeFile(configFile, stripOwnedKeys(text) + cloneConfigBlock(config, id, this.cgroupVersion, this.seccompPath));
    // The clone has never run, so its upper layer holds only what LXC and we put there:
    // writing host keys into it cannot be redirected by anything a student planted.
    const key = await generateHostKey(this.runner, dir, `root@${id}`);
    const sshDir = join(upper, 'etc', 'ssh');
    await mkdir(sshDir, { recursive: true, mode: 0o755 });
    await writeFile(join(sshDir, 'ssh_host_ed25519_key'), key.privateKey, { mode: 0o600 });
    await writeFile(join(sshDir, 'ssh_host_ed25519_key.pub'), key.publicKey + '\n', { mode: 0o644 });
    await writeFile(join(dir, HOST_KEY_FILE), key.publicKey + '\n', { mode: 0o644 });
    if (this.config.hostCa) {
      const cert = await signHostKey(this.runner, dir, key.publicKey, id, this.config.hostCa);
      await writeFile(join(sshDir, 'ssh_host_ed25519_key-cert.pub'), cert + '\n', { mode: 0o644 });
    }
    await writeFile(join(dir, PRISTINE_MARKER), '');
    await mkdir(join(dir, KEYS_DIR), { mode: 0o755 });
    if (range) await chown(join(dir, KEYS_DIR), range.start, range.start);
    if (range) {
      // What LXC and we wrote into the upper layer belongs to the container's root, and the
      // container's root must reach it through the container directory.
      await chmod(dir, 0o711);
      await chmod(join(upper, '..'), 0o711);
      await shiftOwnership(join(upper, '..'), range.start);
    }
    this.log.debug('container_created', { container: id, address });
    return { id, running: false, address };
  }

  async start(id: string): Promise<void> {
    const dir = this.requireContainer(id);
    const address = containerAddress(this.config, id);
    // From the first start on, the student owns the upper layer's contents.
    await rm(join(dir, PRISTINE_MARKER), { force: true });
    await this.remountQuota(dir);
    // A clone made before ports had names of their own would run outside the bridge guard.
    const configFile = join(dir, 'config');
    const text = await readFile(configFile, 'utf8');
    if (!/^\s*lxc\.net\.0\.veth\.pair\s*=/m.test(text)) await writeFile(configFile, stripOwnedKeys(text) + cloneConfigBlock(this.config, id, this.cgroupVersion));
    const t0 = performance.now();
    const result = await this.lxc('lxc-start', ['-n', id, '-d', '-o', join(dir, 'lxc.log'), '-l', 'WARN']);
    const t1 = performance.now();
    if (result.failed && !/already running/i.test(result.stderr)) {
      await this.must(result, 'E_DRIVER_RUNTIME', `starting ${id}`);
    }
    await waitForSsh({
      host: address,
      timeoutMs: this.config.startTimeoutMs,
      what: `container ${id}`,
      // Only a definite STOPPED ends the wait early; a slow or failed lxc-info on a busy host does not.
      giveUp: async () => ((await this.state(id)) === 'STOPPED' ? `the container stopped (see ${join(dir, 'lxc.log')})` : undefined),
    });
    this.log.debug('container_started', { container: id, lxcStartMs: Math.round(t1 - t0), sshReadyMs: Math.round(performance.now() - t1) });
  }

  async stop(id: string): Promise<void> {
    this.requireContainer(id);
    const result = await this.lxc('lxc-stop', ['-n', id, '-k']);
    // exit 2 "is not running": stopping a stopped container is fine.
    if (result.failed && !/not running/i.test(result.stderr)) await this.must(result, 'E_DRIVER_RUNTIME', `stopping ${id}`);
  }

  async destroy(id: string): Promise<void> {
    const dir = this.dir(id);
    if (!existsSync(dir)) return;
    if (!existsSync(join(dir, 'config'))) {
      // A clone that failed before LXC wrote its config: nothing runs from it.
      await rm(dir, { recursive: true, force: true });
      return;
    }
    await this.lxc('lxc-stop', ['-n', id, '-k']);
    await this.detachQuota(dir);
    const result = await this.lxc('lxc-destroy', ['-n', id]);
    if (result.failed && existsSync(dir)) await this.must(result, 'E_DRIVER_RUNTIME', `destroying ${id}`);
  }

  async exec(id: string, argv: readonly string[], input?: string): Promise<ExecResult> {
    this.requireContainer(id);
    if (argv.length === 0) throw new VzsbError('E_INVALID', 'exec: expected a command, got an empty argv');
    const env = EXEC_ENV.flatMap((kv) => ['--set-var', kv]);
    const result = await this.lxc('lxc-attach', ['-n', id, '--clear-env', ...env, '--', ...argv], { input: input ?? '', timeoutMs: EXEC_TIMEOUT_MS });
    if (result.timedOut) throw driverError('E_DRIVER_RUNTIME', `exec in ${id} timed out after ${EXEC_TIMEOUT_MS} ms`, result.command);
    if (result.exitCode === 1 && /^lxc-attach: .*Failed to get (init pid|attach context)/m.test(result.stderr)) {
      throw driverError('E_DRIVER_RUNTIME', `container ${id} is not running`, result.stderr);
    }
    return { exitCode: result.exitCode, stdout: result.stdout, stderr: result.stderr };
  }

  /**
   * Established connections from a gateway (or this host) to the container's sshd, from the
   * host's connection-tracking table: nothing the container's root can fake (./ssh-connections.ts).
   */
  async sessionCount(id: string): Promise<number> {
    this.requireContainer(id);
    if ((await this.state(id)) !== 'RUNNING') return 0;
    return this.connections.count(containerAddress(this.config, id));
  }

  /**
   * The key goes into the clone's key directory on the host (<clone>/vzsb-keys/root), which
   * the container's sshd reads through a read-only bind mount: a file write and a rename, no
   * process in the container. The directory is the host's and nothing in it is followed: a
   * leftover temporary is unlinked and the new one created exclusively (O_EXCL refuses a
   * symlink), then renamed over the old key (rename replaces a link, never follows it).
   * Clones made before this layout (no mount entry in their config) get the key through
   * lxc-attach, inside their own namespaces, or through the upper layer while never started.
   */
  /**
   * The pool's lease record lives in the clone's directory on the host (<clone>/vzsb-lease.json,
   * beside its config, outside the rootfs: no process in the container reaches it), written to
   * a temporary file, fsynced and renamed; lxc-destroy removes it with the clone.
   */
  async writeLeaseRecord(id: string, text: string): Promise<void> {
    const dir = this.requireContainer(id);
    const tmp = join(dir, `.${LEASE_RECORD}.${process.pid}-${++this.recordSeq}`);
    try {
      const fh = await open(tmp, 'wx', 0o600);
      try {
        await fh.writeFile(text);
        await fh.sync();
      } finally {
        await fh.close();
      }
      await rename(tmp, join(dir, LEASE_RECORD));
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
  }

  async readLeaseRecord(id: string): Promise<string | undefined> {
    return readFile(join(this.dir(id), LEASE_RECORD), 'utf8').catch(() => undefined);
  }

  /** The bridge exists and is administratively up; the free space where clones are made. */
  async health(): Promise<DriverHealth> {
    const problems: string[] = [];
    const flags = await readFile(join(this.sysClassNet, this.config.bridge, 'flags'), 'utf8').catch(() => undefined);
    if (flags === undefined) problems.push(`bridge ${this.config.bridge} does not exist`);
    else if ((Number.parseInt(flags.trim(), 16) & 1) === 0) problems.push(`bridge ${this.config.bridge} is down`);
    let freeBytes: number | undefined;
    try {
      const fs = await statfs(this.config.lxcPath);
      freeBytes = fs.bavail * fs.bsize;
    } catch (err) {
      problems.push(`cannot read the free space of ${this.config.lxcPath}: ${(err as Error).message}`);
    }
    return { problems, freeBytes, reachable: true };
  }

  async authorizeKey(id: string, publicKeys: string | readonly string[]): Promise<void> {
    const dir = this.requireContainer(id);
    const lines = keyLines(publicKeys);
    for (const line of lines) keyBlob(line);
    const text = lines.map((l) => l + '\n').join('');
    const config = await readFile(join(dir, 'config'), 'utf8');
    if (config.includes(`${KEYS_DIR} ${KEYS_MOUNT} `)) {
      const keys = join(dir, KEYS_DIR);
      const tmp = join(keys, '.root.vzsb-new');
      await rm(tmp, { force: true });
      await writeFile(tmp, text, { mode: 0o644, flag: 'wx' });
      const range = containerIdRange(this.config, id);
      if (range) await chown(tmp, range.start, range.start);
      await rename(tmp, join(keys, 'root'));
      return;
    }
    if (existsSync(join(dir, PRISTINE_MARKER)) && (await this.state(id)) === 'STOPPED') {
      const upper = overlayUpperDir(config);
      if (!upper) throw driverError('E_DRIVER_RUNTIME', `clone ${id} is not an overlay clone`);
      const sshDir = join(upper, 'root', '.ssh');
      await mkdir(join(upper, 'root'), { recursive: true, mode: 0o700 });
      await mkdir(sshDir, { recursive: true, mode: 0o700 });
      await chmod(sshDir, 0o700);
      const tmp = join(sshDir, 'authorized_keys.vzsb-new');
      await writeFile(tmp, text, { mode: 0o600 });
      await rename(tmp, join(sshDir, 'authorized_keys'));
      const range = containerIdRange(this.config, id);
      if (range) await shiftOwnership(join(upper, 'root'), range.start);
      return;
    }
    const script =
      // A .ssh that is not a plain directory (a student's symlink) is replaced, not followed.
      'set -e; umask 077; if [ -L /root/.ssh ] || [ ! -d /root/.ssh ]; then rm -rf /root/.ssh; mkdir /root/.ssh; fi; chmod 700 /root/.ssh; ' +
      'cat > /root/.ssh/authorized_keys.vzsb-new; mv -f /root/.ssh/authorized_keys.vzsb-new /root/.ssh/authorized_keys';
    const result = await this.exec(id, ['/bin/sh', '-c', script], text);
    if (result.exitCode !== 0) {
      throw driverError('E_DRIVER_RUNTIME', `cannot write root's authorized_keys in ${id} (exit ${result.exitCode})`, result.stderr);
    }
  }

  async hostKey(id: string): Promise<HostKey> {
    const dir = this.requireContainer(id);
    const text = await readFile(join(dir, HOST_KEY_FILE), 'utf8').catch(() => undefined);
    if (text === undefined) throw driverError('E_DRIVER_NOT_FOUND', `container ${id} has no recorded host key`);
    return hostKeyOf(text);
  }

  /**
   * The disk and inode quota: the clone's upper layer moves onto a new volume of its own
   * before anything is written into it (./lxc-volume.ts, docs/drivers.md).
   */
  private async attachQuota(dir: string, upper: string): Promise<void> {
    if (this.config.quota) await makeVolume(this.runner, dir, upper, this.config.quota, this.dir(this.config.baseName));
  }

  /** After a host reboot the volume is mounted again before the container starts on it. */
  private async remountQuota(dir: string): Promise<void> {
    const upper = overlayUpperDir(await readFile(join(dir, 'config'), 'utf8'));
    if (upper) await ensureVolumeMounted(this.runner, dir, upper);
  }

  private async detachQuota(dir: string): Promise<void> {
    const upper = overlayUpperDir(await readFile(join(dir, 'config'), 'utf8').catch(() => ''));
    if (upper) await unmountVolume(this.runner, upper);
  }

  private requireContainer(id: string): string {
    containerAddress(this.config, id); // validates the id
    const dir = this.dir(id);
    if (!existsSync(join(dir, 'config'))) throw driverError('E_DRIVER_NOT_FOUND', `container ${id} does not exist`);
    return dir;
  }

  private async state(id: string): Promise<string> {
    const result = await this.lxc('lxc-info', ['-n', id, '-s', '-H']);
    return result.failed ? 'MISSING' : result.stdout.trim();
  }

  private lxc(tool: string, args: readonly string[], options: { input?: string; timeoutMs?: number } = {}): Promise<CommandResult> {
    return this.runner(tool, ['-P', this.config.lxcPath, ...args], { timeoutMs: 60_000, ...options });
  }

  private async must(result: CommandResult, code: DriverErrorCode, doing: string): Promise<void> {
    if (!result.failed) return;
    const tail = result.stderr.trim().split('\n').slice(-3).join('\n');
    const why = result.timedOut ? 'timed out' : `exit ${result.exitCode}`;
    throw driverError(code, `${doing} failed (${why}): ${tail || result.command}`, `${result.command}\n${result.stderr}`);
  }
}

export function driverError(code: DriverErrorCode, message: string, details?: string): VzsbError {
  return new VzsbError(code, message, details === undefined ? {} : { details });
}

/** The path of a process's cgroup: the pids controller's on v1, the unified one on v2. */
export function cgroupPathOf(procCgroup: string, version: CgroupVersion): string | undefined {
  for (const line of procCgroup.split('\n')) {
    const [, controllers, path] = /^\d+:([^:]*):(.*)$/.exec(line) ?? [];
    if (path === undefined) continue;
    if (version === 2 && controllers === '') return path;
    if (version === 1 && controllers!.split(',').includes('pids')) return path;
  }
  return undefined;
}

async function replaceFile(path: string, content: string, mode: number): Promise<void> {
  await writeFile(`${path}.new`, content, { mode });
  await rename(`${path}.new`, path);
}

/**
 * Give a tree to an unprivileged container's ids: every owner below `start` moves up by
 * `start` (ids already shifted stay). chown clears setuid/setgid bits, so modes are restored.
 * Only for trees no container has run on (the base, a never-started clone's upper layer).
 */
export async function shiftOwnership(path: string, start: number): Promise<void> {
  const st = await lstat(path);
  if (st.uid < start || st.gid < start) {
    await lchown(path, st.uid < start ? st.uid + start : st.uid, st.gid < start ? st.gid + start : st.gid);
    if (!st.isSymbolicLink()) await chmod(path, st.mode & 0o7777);
  }
  if (st.isDirectory()) {
    for (const name of await readdir(path)) await shiftOwnership(join(path, name), start);
  }
}

/** Make a copied debootstrap tree into the base: no host keys, our sshd config and init. */
async function customizeBaseRootfs(rootfs: string): Promise<void> {
  const ssh = join(rootfs, 'etc', 'ssh');
  for (const name of await readdir(ssh)) {
    if (name.startsWith('ssh_host_')) await unlink(join(ssh, name));
  }
  await rm(join(ssh, 'sshd_config.d'), { recursive: true, force: true });
  await writeFile(join(ssh, 'sshd_config'), SSHD_CONFIG, { mode: 0o644 });
  await writeFile(join(rootfs, 'sbin', 'vzsb-init'), INIT_SCRIPT, { mode: 0o755 });
  await mkdir(join(rootfs, 'run', 'sshd'), { recursive: true, mode: 0o755 });
  await mkdir(join(rootfs, KEYS_MOUNT), { recursive: true, mode: 0o755 });
  await rm(join(rootfs, 'root', '.ssh'), { recursive: true, force: true });
}
