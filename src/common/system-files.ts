import { join } from 'node:path';

/**
 * Files and programs of the system (outside the project) that vzsandbox relies on, with the
 * Debian package that ships each. `vzsb doctor` and the pre-flight checks name these packages;
 * test/system/packages.test.ts checks with dpkg that each really ships what is said here, and
 * that every system path and program the sources name belongs to a package we install.
 */

/** Where LXC keeps the config snippets containers include (liblxc-common, a Depends of lxc). */
export const LXC_CONFIG_DIR = '/usr/share/lxc/config';

export function lxcConfigFile(name: string, dir: string = LXC_CONFIG_DIR): string {
  return join(dir, name);
}

/** LXC config snippets the lab and the LXC driver include, each from liblxc-common. */
export const LXC_CONFIG_FILES: readonly string[] = ['common.conf', 'nesting.conf', 'userns.conf'];
export const LXC_CONFIG_PACKAGE = 'liblxc-common';

/**
 * Programs the control machine runs (the lab, the LXC driver and the daemons in tests, the
 * deploy benchmark), by name, with the package scripts/install-deps.sh installs for it (or
 * the hard dependency of one that ships it).
 */
export const CONTROL_PROGRAMS: Readonly<Record<string, string>> = {
  'lxc-start': 'lxc',
  'lxc-stop': 'lxc',
  'lxc-copy': 'lxc',
  'lxc-destroy': 'lxc',
  'lxc-attach': 'lxc',
  'lxc-info': 'lxc',
  'lxc-ls': 'lxc',
  'lxc-cgroup': 'lxc',
  rsync: 'rsync',
  newuidmap: 'uidmap',
  nft: 'nftables',
  ip: 'iproute2',
  bridge: 'iproute2',
  debootstrap: 'debootstrap',
  sshd: 'openssh-server',
  ssh: 'openssh-client',
  'ssh-keygen': 'openssh-client',
  busybox: 'busybox-static',
  sudo: 'sudo',
  visudo: 'sudo',
  cron: 'cron',
  'ansible-playbook': 'ansible-core',
  tmux: 'tmux',
  flock: 'util-linux',
  chroot: 'coreutils',
};

/** Where the doctor looks for programs (not $PATH: under npm, node_modules/.bin comes first). */
export const SYSTEM_BIN_DIRS: readonly string[] = ['/usr/local/sbin', '/usr/local/bin', '/usr/sbin', '/usr/bin', '/sbin', '/bin'];
