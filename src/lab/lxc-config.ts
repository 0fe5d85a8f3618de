import type { LabInit } from './options.js';

import { lxcConfigFile } from '../common/system-files.js';

/**
 * LXC configuration of lab containers. LXC's common.conf (liblxc-common, which lxc depends
 * on) drops the dangerous capabilities and mounts cgroup/proc/sys "mixed" (the container's own
 * cgroup writable); systemd boots under it on this machine's cgroup v1 hybrid layout.
 *
 * COMMON_EXTRA holds what Debian's debian.common.conf adds to common.conf. That
 * file ships in lxc-templates, only a Recommends of lxc, so a machine installed without
 * Recommends does not have it: the lab carries its few lines itself instead of including it.
 */
const COMMON = lxcConfigFile('common.conf');
const NESTING = lxcConfigFile('nesting.conf');
const COMMON_EXTRA = [
  'lxc.tty.dir =',
  // rtc, tun, hpet, kvm, as debian.common.conf allows them
  'lxc.cgroup.devices.allow = c 254:0 rm',
  'lxc.cgroup.devices.allow = c 10:200 rwm',
  'lxc.cgroup.devices.allow = c 10:228 rwm',
  'lxc.cgroup.devices.allow = c 10:232 rwm',
];

/** Where busybox init finds its table in a script-init host (written into the base). */
export const SCRIPT_INIT_CMD = '/bin/busybox init';

export interface HostConfig {
  name: string;
  rootfsPath: string;
  init: LabInit;
  nesting: boolean;
  bridge: string;
  address: string;
  prefixLength: number;
  gateway: string;
  hwaddr: string;
  consoleLog: string;
  lxcLog: string;
  /**
   * This machine's debootstrap cache, bind-mounted read-only at the same path in hosts that
   * run containers: it stands in for the Debian mirror that lab hosts cannot reach, so a
   * hypervisor's base is built from the tree already made here (docs/lab.md).
   */
  rootfsCache?: string | undefined;
  /**
   * A directory of this machine's filesystem bind-mounted at /var/lib/vzsandbox/containers in
   * hosts that run containers, like a data disk: overlayfs cannot put the upper layers of the
   * inner containers on the host's own root, which is an overlay itself.
   */
  containersDir?: string | undefined;
  /** the cgroup version of this machine: where the devices rules of loopDevices go */
  cgroupVersion?: 1 | 2 | undefined;
}

/**
 * Hosts that run containers make a loop device per container (its disk volume, see
 * src/daemons/drivers/lxc-volume.ts): they get /dev/loop-control and may use loop devices
 * (block major 7; the driver makes the /dev/loopN node it is given). This lets the lab host
 * reach every loop device of this machine: fine for a test host, as a real hypervisor's root
 * could too.
 */
export function loopDeviceLines(cgroupVersion: 1 | 2): string[] {
  const key = cgroupVersion === 2 ? 'lxc.cgroup2.devices.allow' : 'lxc.cgroup.devices.allow';
  return [`${key} = c 10:237 rwm`, `${key} = b 7:* rwm`, 'lxc.mount.entry = /dev/loop-control dev/loop-control none bind,create=file 0 0'];
}

export function baseConfig(rootfsPath: string): string {
  return lines([`lxc.include = ${COMMON}`, ...COMMON_EXTRA, 'lxc.arch = linux64', 'lxc.uts.name = base', `lxc.rootfs.path = ${rootfsPath}`, 'lxc.net.0.type = empty']);
}

export function hostConfig(c: HostConfig): string {
  const common = [
    `lxc.include = ${COMMON}`,
    ...COMMON_EXTRA,
    'lxc.arch = linux64',
    `lxc.uts.name = ${c.name}`,
    `lxc.rootfs.path = ${c.rootfsPath}`,
    'lxc.net.0.type = veth',
    `lxc.net.0.link = ${c.bridge}`,
    'lxc.net.0.flags = up',
    'lxc.net.0.name = eth0',
    `lxc.net.0.hwaddr = ${c.hwaddr}`,
    `lxc.net.0.ipv4.address = ${c.address}/${c.prefixLength}`,
    `lxc.net.0.ipv4.gateway = ${c.gateway}`,
    `lxc.console.logfile = ${c.consoleLog}`,
    `lxc.log.file = ${c.lxcLog}`,
    'lxc.log.level = WARN',
  ];
  // Nested LXC: proc/sys for the inner LXC (nesting.conf) and every cgroup v1 controller
  // mounted writable below our own cgroup, whatever the init does with /sys/fs/cgroup.
  const nesting = c.nesting ? [`lxc.include = ${NESTING}`, 'lxc.mount.auto = cgroup:rw:force'] : [];
  if (c.nesting && c.containersDir) nesting.push(`lxc.mount.entry = ${c.containersDir} var/lib/vzsandbox/containers none bind,create=dir 0 0`);
  if (c.nesting) nesting.push(...loopDeviceLines(c.cgroupVersion ?? 1));
  if (c.nesting && c.rootfsCache) nesting.push(`lxc.mount.entry = ${c.rootfsCache} ${c.rootfsCache.replace(/^\//, '')} none bind,ro,create=dir 0 0`);
  // no ttys: the console (logged to consoleLog) is enough
  const init =
    c.init === 'systemd'
      ? ['lxc.signal.halt = SIGRTMIN+3']
      : [
          `lxc.init.cmd = ${SCRIPT_INIT_CMD}`,
          'lxc.mount.entry = tmpfs run tmpfs rw,nosuid,nodev,mode=755 0 0',
          // busybox init powers off on SIGUSR2
          'lxc.signal.halt = SIGUSR2',
        ];
  return lines([...common, ...nesting, 'lxc.tty.max = 0', ...init]);
}

/** The include every lab config had before it carried COMMON_EXTRA itself (a file of lxc-templates). */
const OLD_DEBIAN_COMMON = /^lxc\.include\s*=\s*\/usr\/share\/lxc\/config\/debian\.common\.conf\s*$/m;

/**
 * A config written by an older vzsb, with its debian.common.conf include replaced by what the
 * lab writes now; undefined when there is nothing to change. Without it, LXC cannot even stop
 * or destroy such a container on a machine without lxc-templates ("Failed to load config").
 */
export function upgradeConfig(text: string): string | undefined {
  if (!OLD_DEBIAN_COMMON.test(text)) return undefined;
  return text.replace(OLD_DEBIAN_COMMON, [`lxc.include = ${COMMON}`, ...COMMON_EXTRA].join('\n'));
}

/** A stable locally administered MAC per lab subnet and host index. */
export function hostHwaddr(subnetThird: number, index: number): string {
  const hex = (n: number) => n.toString(16).padStart(2, '0');
  return `02:76:7a:${hex(subnetThird)}:${hex((index >> 8) & 0xff)}:${hex(index & 0xff)}`;
}

function lines(items: string[]): string {
  return items.join('\n') + '\n';
}
