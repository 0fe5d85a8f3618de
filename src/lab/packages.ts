/**
 * What a real target host of ours has installed. The lab's root filesystem is made from
 * this list once per machine (debootstrap, cached by ensureRootfs), so every lab host
 * starts as a fresh Debian server would after a minimal install.
 */
export const LAB_HOST_PACKAGES: readonly string[] = [
  'systemd',
  'systemd-sysv',
  'openssh-server',
  'sudo',
  // ansible-playbook needs a Python on its targets (and python3-apt for its apt module);
  // the deploy benchmark runs it here, and lab hosts cannot fetch packages themselves.
  'python3',
  'python3-apt',
  'iproute2',
  'procps',
  'cron',
  'nftables',
  // a hypervisor reads session liveness from connection tracking (the tool where the kernel has no /proc/net/nf_conntrack)
  'conntrack',
  'lxc',
  'debootstrap',
  'ca-certificates',
  'apt-utils',
  'less',
  // Debian's own Node.js (bookworm main) runs the daemons on the hosts.
  'nodejs',
  // ping and nc for checking reachability inside a host (nested containers).
  'iputils-ping',
  'busybox-static',
];
