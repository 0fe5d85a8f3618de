import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, readdir, rm, unlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VzsbError, errorMessage } from '../common/errors.js';
import { commandError, run, runChecked, type Runner } from '../common/exec.js';
import { silentLogger, type Logger } from '../common/log.js';
import { DEFAULT_CACHE_DIR, ensureRootfs } from '../common/rootfs.js';
import { BASE_PACKAGES, detectCgroupVersion } from '../daemons/drivers/lxc-config.js';
import { preflightError, runChecks, type DoctorRoots } from '../doctor/run.js';
import { BASE_CONTAINER, createBase } from './base.js';
import { makeDataDisk, removeDataDisks } from './data-disk.js';
import { addFirewall, removeFirewall } from './firewall.js';
import { DEFAULT_LAB_ROOT, labLayout, subnetReservationDir, type LabLayout } from './layout.js';
import { hostConfig, hostHwaddr, upgradeConfig } from './lxc-config.js';
import { assertLabName, parseLabOptions, type LabInit, type LabOptions } from './options.js';
import { LAB_HOST_PACKAGES } from './packages.js';
import { waitForSshBanner } from './ready.js';
import { generateKeyPair, knownHostsLine } from './ssh-keys.js';
import { hostAddress, releaseSubnet, reserveSubnet, type Subnet } from './subnet.js';

/** One lab host as an SSH client (or an inventory) needs it. */
export interface LabHost {
  name: string;
  address: string;
  port: number;
  /** root; the non-root `admin` (passwordless sudo) accepts the same key */
  user: string;
  keyFile: string;
  knownHostsFile: string;
  init: LabInit;
  /** may run LXC containers of its own */
  nesting: boolean;
  /** inventory groups besides `lab` */
  groups: string[];
}

export interface Lab {
  name: string;
  dir: string;
  lxcPath: string;
  bridge: string;
  /** "10.236.Y.0/24" */
  subnet: string;
  /** the host side of the bridge, "10.236.Y.1" */
  gateway: string;
  keyFile: string;
  knownHostsFile: string;
  hosts: LabHost[];
  /** pid of the process that made it; pruneStaleLabs removes labs whose owner died */
  ownerPid: number | undefined;
  createdAt: string;
}

/** Side effects of lab code, passed in (tests and the CLI use the defaults). */
export interface LabEnv {
  root?: string;
  runner?: Runner;
  logger?: Logger;
  rootfsCacheDir?: string;
  /** record this pid as owner (test helpers), so a lab left by a killed run can be pruned */
  ownerPid?: number;
  progress?: (line: string) => void;
  /**
   * Roots the pre-flight checks read (src/doctor), defaults the real ones; `false` skips the
   * pre-flight (only for tests of the lab's own error paths).
   */
  preflight?: DoctorRoots | false;
}

const LAB_USER = 'root';
export const LAB_ADMIN_USER = 'admin';
const CONSOLE_TAIL_LINES = 25;

/**
 * Make a lab: a bridge with a private /24 of its own, a base container on the cached
 * rootfs, and N hosts cloned from it, each booted and answering SSH on port 22 with a host
 * key listed in the lab's known_hosts. On failure everything made so far is removed.
 */
export async function createLab(options: LabOptions, env: LabEnv = {}): Promise<Lab> {
  const opts = parseLabOptions(options);
  const root = env.root ?? DEFAULT_LAB_ROOT;
  const runner = env.runner ?? run;
  const log = (env.logger ?? silentLogger).child({ lab: opts.name });
  const layout = labLayout(opts.name, root);
  const started = performance.now();

  // Before anything is changed: what this machine must have (vzsb doctor runs the same checks).
  if (env.preflight !== false) await labPreflight(opts.name, opts.hosts.length, runner, env.preflight ?? {}, env.progress);

  await mkdir(root, { recursive: true });
  try {
    await mkdir(layout.dir, { mode: 0o700 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'EEXIST') {
      throw new VzsbError('E_LAB_EXISTS', `lab ${opts.name} already exists (${layout.dir}); destroy it first`);
    }
    throw err;
  }

  try {
    const rootfsDir = await ensureRootfs({ packages: LAB_HOST_PACKAGES, cacheDir: env.rootfsCacheDir, runner, progress: env.progress });
    // Hosts that run containers get this machine's debootstrap cache read-only, with the
    // hypervisor's default base tree in it (lab hosts cannot reach a Debian mirror).
    let rootfsCache: string | undefined;
    if (opts.hosts.some((h) => h.nesting)) {
      await ensureRootfs({ packages: BASE_PACKAGES, cacheDir: env.rootfsCacheDir, runner, progress: env.progress });
      rootfsCache = env.rootfsCacheDir ?? DEFAULT_CACHE_DIR;
    }
    const subnet = await reserveSubnet({ labName: opts.name, labDir: layout.dir, reservationDir: subnetReservationDir(root), runner });
    // The name is ours now (its dir was made exclusively): a bridge or table of that name is
    // left from a lab whose dir was removed by hand.
    await deleteBridge(layout.bridge, runner);
    await removeFirewall(layout.bridge, runner);
    await createBridge(layout.bridge, subnet, runner);
    await addFirewall(layout.bridge, runner);

    await mkdir(layout.lxcPath, { recursive: true });
    await mkdir(layout.hostKeysDir, { recursive: true });
    const clientKey = await generateKeyPair(layout.keyFile, `vzsb-lab-${opts.name}`, runner);
    const hosts: LabHost[] = opts.hosts.map((h, i) => ({
      name: h.name,
      address: hostAddress(subnet, i),
      port: 22,
      user: LAB_USER,
      keyFile: layout.keyFile,
      knownHostsFile: layout.knownHostsFile,
      init: h.init,
      nesting: h.nesting,
      groups: h.groups,
    }));
    const hostKeys = await Promise.all(hosts.map((h) => generateKeyPair(join(layout.hostKeysDir, h.name), `${h.name}@${opts.name}`, runner)));
    await writeFile(layout.knownHostsFile, hosts.map((h, i) => knownHostsLine([h.address, h.name], h.port, hostKeys[i]!.publicKey)).join('\n') + '\n');

    const lab: Lab = {
      name: opts.name,
      dir: layout.dir,
      lxcPath: layout.lxcPath,
      bridge: layout.bridge,
      subnet: subnet.cidr,
      gateway: subnet.gateway,
      keyFile: layout.keyFile,
      knownHostsFile: layout.knownHostsFile,
      hosts,
      ownerPid: env.ownerPid,
      createdAt: new Date().toISOString(),
    };
    await writeFile(layout.stateFile, JSON.stringify(lab, null, 2) + '\n');

    await createBase({ lxcPath: layout.lxcPath, rootfsDir, publicKey: clientKey.publicKey, runner });
    const third = Number(subnet.base.split('.')[2]);
    const etcHosts = renderEtcHosts(hosts);
    // lxc-copy takes the base's lock: clone one at a time (about 50 ms each)
    for (const [i, host] of hosts.entries()) {
      await cloneHost(layout, host, i, third, subnet, etcHosts, join(layout.hostKeysDir, host.name), runner, rootfsCache);
    }
    await Promise.all(hosts.map((h) => startHost(layout, h.name, runner)));
    await waitForHosts(layout, hosts, opts.readyTimeoutSec * 1000);
    log.info('lab.created', { hosts: hosts.length, subnet: subnet.cidr, durationMs: Math.round(performance.now() - started) });
    return lab;
  } catch (err) {
    log.warn('lab.create_failed', { error: errorMessage(err) });
    await destroyLab(opts.name, env).catch((cleanupErr) => log.error('lab.cleanup_failed', { error: errorMessage(cleanupErr) }));
    throw err;
  }
}

/**
 * The doctor's checks for this machine. Limits the lab can raise itself (inotify, which
 * systemd in every host uses) are raised, and said so; anything else missing is an error that
 * names what provides it.
 */
async function labPreflight(name: string, hosts: number, runner: Runner, roots: DoctorRoots, progress: ((line: string) => void) | undefined): Promise<void> {
  const results = await runChecks({ labHosts: hosts, roots, runner });
  const err = preflightError(`lab ${name}`, results.filter((r) => !r.check.labRaises));
  if (err) throw err;
  for (const r of results.filter((x) => !x.ok && x.check.labRaises)) {
    const m = /^(fs\.inotify\.\w+) = (\d+), about (\d+) needed/.exec(r.detail);
    if (!m) throw preflightError(`lab ${name}`, [r])!;
    const [, key, from, need] = m;
    // headroom for what else starts meanwhile (nested containers, other labs)
    const to = Math.max(Number(need) * 2, 1024);
    await writeFile(join(roots.proc ?? '/proc', 'sys', ...key!.split('.')), `${to}\n`);
    progress?.(`raised ${key} from ${from} to ${to} for ${hosts} lab hosts (until reboot; each systemd host takes some)`);
  }
}

/**
 * Remove a lab: its containers, bridge, subnet reservation and state dir. Works on a
 * half-made lab and on one already gone (then it does nothing).
 */
export async function destroyLab(name: string, env: LabEnv = {}): Promise<void> {
  assertLabName(name);
  const root = env.root ?? DEFAULT_LAB_ROOT;
  const runner = env.runner ?? run;
  const layout = labLayout(name, root);
  const started = performance.now();
  if (existsSync(layout.lxcPath)) {
    await upgradeConfigs(layout.lxcPath);
    const containers = await listContainers(layout.lxcPath, runner);
    const hosts = containers.filter((c) => c !== BASE_CONTAINER);
    // hosts first: the base refuses to go while its snapshot clones exist
    await Promise.all(hosts.map((c) => destroyContainer(layout.lxcPath, c, runner)));
    if (containers.includes(BASE_CONTAINER)) await destroyContainer(layout.lxcPath, BASE_CONTAINER, runner);
    // a base half-made during customization may still have its overlay mounted
    await runner('umount', [join(layout.lxcPath, BASE_CONTAINER, 'customize-mnt')]);
  }
  await removeDataDisks(layout.dir, runner);
  await deleteBridge(layout.bridge, runner);
  await removeFirewall(layout.bridge, runner);
  await releaseSubnet(subnetReservationDir(root), name);
  await rm(layout.dir, { recursive: true, force: true });
  (env.logger ?? silentLogger).info('lab.destroyed', { lab: name, durationMs: Math.round(performance.now() - started) });
}

/** The lab's recorded state, or undefined if there is no such lab. */
export async function readLab(name: string, env: LabEnv = {}): Promise<Lab | undefined> {
  const layout = labLayout(assertLabName(name), env.root ?? DEFAULT_LAB_ROOT);
  const text = await readFile(layout.stateFile, 'utf8').catch(() => undefined);
  return text === undefined ? undefined : (JSON.parse(text) as Lab);
}

export async function listLabs(env: LabEnv = {}): Promise<string[]> {
  const root = env.root ?? DEFAULT_LAB_ROOT;
  if (!existsSync(root)) return [];
  return (await readdir(root, { withFileTypes: true })).filter((e) => e.isDirectory() && !e.name.startsWith('.')).map((e) => e.name);
}

/**
 * Destroy labs whose owner process is gone (a test run killed before its teardown).
 * Labs without an owner (made by hand or by `vzsb lab up`) are never touched.
 */
export async function pruneStaleLabs(env: LabEnv = {}): Promise<string[]> {
  const pruned: string[] = [];
  for (const name of await listLabs(env)) {
    const lab = await readLab(name, env).catch(() => undefined);
    if (!lab?.ownerPid || processAlive(lab.ownerPid)) continue;
    // best effort: another process may be pruning the same lab right now
    try {
      await destroyLab(name, env);
      pruned.push(name);
    } catch (err) {
      (env.logger ?? silentLogger).warn('lab.prune_failed', { lab: name, error: errorMessage(err) });
    }
  }
  return pruned;
}

/** Rewrite the configs of a lab made by an older vzsb so LXC can load them (see upgradeConfig). */
async function upgradeConfigs(lxcPath: string): Promise<void> {
  for (const entry of await readdir(lxcPath, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory()) continue;
    const file = join(lxcPath, entry.name, 'config');
    const text = await readFile(file, 'utf8').catch(() => undefined);
    const upgraded = text === undefined ? undefined : upgradeConfig(text);
    if (upgraded !== undefined) await writeFile(file, upgraded);
  }
}

/** Stop one host (its address stops answering); the lab stays. */
export async function stopLabHost(lab: Lab, hostName: string, env: LabEnv = {}): Promise<void> {
  findHost(lab, hostName);
  await upgradeConfigs(lab.lxcPath);
  await runChecked('lxc-stop', ['-P', lab.lxcPath, '-n', hostName, '-k'], {}, env.runner ?? run);
}

/** Start a stopped host again and wait for its sshd. */
export async function startLabHost(lab: Lab, hostName: string, env: LabEnv & { readyTimeoutSec?: number } = {}): Promise<void> {
  const host = findHost(lab, hostName);
  const layout = labLayout(lab.name, dirname(lab.dir));
  await upgradeConfigs(lab.lxcPath);
  await startHost(layout, hostName, env.runner ?? run);
  await waitForHosts(layout, [host], (env.readyTimeoutSec ?? 120) * 1000);
}

function findHost(lab: Lab, hostName: string): LabHost {
  const host = lab.hosts.find((h) => h.name === hostName);
  if (!host) throw new VzsbError('E_LAB_HOST', `lab ${lab.name} has no host ${hostName} (hosts: ${lab.hosts.map((h) => h.name).join(', ')})`);
  return host;
}

async function createBridge(bridge: string, subnet: Subnet, runner: Runner): Promise<void> {
  await runChecked('ip', ['link', 'add', 'name', bridge, 'type', 'bridge', 'forward_delay', '0'], {}, runner);
  await runChecked('ip', ['addr', 'add', `${subnet.gateway}/24`, 'dev', bridge], {}, runner);
  await runChecked('ip', ['link', 'set', bridge, 'up'], {}, runner);
}

async function deleteBridge(bridge: string, runner: Runner): Promise<void> {
  const exists = await runner('ip', ['link', 'show', 'dev', bridge]);
  if (exists.failed) return;
  await runChecked('ip', ['link', 'delete', bridge], {}, runner);
}

async function cloneHost(
  layout: LabLayout,
  host: LabHost,
  index: number,
  third: number,
  subnet: Subnet,
  etcHosts: string,
  hostKeyFile: string,
  runner: Runner,
  rootfsCache: string | undefined,
): Promise<void> {
  const containersDir = host.nesting ? await makeDataDisk(layout.dir, host.name, runner) : undefined;
  await runChecked('lxc-copy', ['-P', layout.lxcPath, '-n', BASE_CONTAINER, '-N', host.name, '-s', '-B', 'overlay'], {}, runner);
  const dir = join(layout.lxcPath, host.name);
  const configFile = join(dir, 'config');
  const rootfsPath = /^lxc\.rootfs\.path\s*=\s*(\S+)/m.exec(await readFile(configFile, 'utf8'))?.[1];
  const upper = rootfsPath?.split(':')[2];
  if (!rootfsPath || !upper) throw new VzsbError('E_LAB_CLONE', `lxc-copy did not give ${host.name} an overlay root filesystem (${rootfsPath ?? 'none'})`);
  await writeFile(
    configFile,
    hostConfig({
      name: host.name,
      rootfsPath,
      init: host.init,
      nesting: host.nesting,
      bridge: layout.bridge,
      address: host.address,
      prefixLength: 24,
      gateway: subnet.gateway,
      hwaddr: hostHwaddr(third, index),
      consoleLog: join(dir, 'console.log'),
      lxcLog: join(dir, 'lxc.log'),
      rootfsCache,
      containersDir,
      cgroupVersion: detectCgroupVersion(),
    }),
  );
  // Per-host files go straight into the clone's upper layer. The base's upper holds
  // whiteouts for the rootfs's host keys: remove a whiteout before writing over it.
  const etc = join(upper, 'etc');
  await mkdir(join(etc, 'ssh'), { recursive: true });
  await writeFile(join(etc, 'hostname'), `${host.name}\n`);
  await writeFile(join(etc, 'hosts'), etcHosts.replace('@SELF@', host.name));
  for (const [src, dest, mode] of [
    [hostKeyFile, 'ssh_host_ed25519_key', 0o600],
    [`${hostKeyFile}.pub`, 'ssh_host_ed25519_key.pub', 0o644],
  ] as const) {
    const target = join(etc, 'ssh', dest);
    await unlink(target).catch(() => {});
    await writeFile(target, await readFile(src));
    await chmod(target, mode);
  }
}

function renderEtcHosts(hosts: readonly LabHost[]): string {
  return ['127.0.0.1\tlocalhost', '127.0.1.1\t@SELF@', '::1\tlocalhost ip6-localhost ip6-loopback', ...hosts.map((h) => `${h.address}\t${h.name}`)].join('\n') + '\n';
}

async function startHost(layout: LabLayout, name: string, runner: Runner): Promise<void> {
  const result = await runner('lxc-start', ['-P', layout.lxcPath, '-n', name, '-d'], { timeoutMs: 60_000 });
  if (result.failed) {
    const lxcLog = await tail(join(layout.lxcPath, name, 'lxc.log'), CONSOLE_TAIL_LINES);
    throw new VzsbError('E_LAB_START', `lab ${layout.name}: host ${name} did not start (lxc-start exit ${result.exitCode})\n${lxcLog || result.stderr.trim()}`, {
      details: result.stderr,
    });
  }
}

/** Wait for all hosts at once; the error names every host that did not come up. */
async function waitForHosts(layout: LabLayout, hosts: readonly LabHost[], timeoutMs: number): Promise<void> {
  const ready = await Promise.all(hosts.map((h) => waitForSshBanner(h.address, h.port, timeoutMs)));
  const down = hosts.filter((_, i) => !ready[i]);
  if (down.length === 0) return;
  const seconds = timeoutMs >= 10_000 ? String(Math.round(timeoutMs / 1000)) : (timeoutMs / 1000).toFixed(2);
  const reports = await Promise.all(
    down.map(async (h) => {
      const consoleTail = await tail(join(layout.lxcPath, h.name, 'console.log'), CONSOLE_TAIL_LINES);
      return `host ${h.name} (${h.address}:${h.port}) did not answer with an SSH banner within ${seconds} s; last lines of its console log:\n${consoleTail || '(console log empty)'}`;
    }),
  );
  throw new VzsbError('E_LAB_NOT_READY', `lab ${layout.name}: ${reports.join('\n')}`);
}

async function listContainers(lxcPath: string, runner: Runner): Promise<string[]> {
  const result = await runner('lxc-ls', ['-P', lxcPath, '-1']);
  if (result.failed) throw new VzsbError('E_LAB_LIST', `cannot list containers in ${lxcPath}: ${result.stderr.trim()}`);
  return result.stdout.split('\n').map((s) => s.trim()).filter(Boolean);
}

async function destroyContainer(lxcPath: string, name: string, runner: Runner): Promise<void> {
  // -k: a lab host holds nothing worth a clean shutdown, and SIGKILL of its init is instant
  await runner('lxc-stop', ['-P', lxcPath, '-n', name, '-k']);
  const result = await runner('lxc-destroy', ['-P', lxcPath, '-n', name]);
  // gone already (destroyed by a concurrent destroyLab) is what we wanted
  if (result.failed && existsSync(join(lxcPath, name, 'config'))) throw commandError(result);
}

async function tail(file: string, lines: number): Promise<string> {
  const text = await readFile(file, 'utf8').catch(() => '');
  // eslint-disable-next-line no-control-regex
  return text.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '').trimEnd().split('\n').slice(-lines).join('\n');
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}
