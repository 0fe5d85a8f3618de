import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../common/errors.js';
import { runChecked, type Runner } from '../common/exec.js';
import { baseConfig } from './lxc-config.js';

/**
 * The lab's base container: an overlay on the machine's cached root filesystem whose upper
 * layer holds what every lab host shares (admin user, the lab's login key, sshd settings,
 * the script init). Hosts are overlay snapshot clones of it (lxc-copy -s -B overlay), which
 * copies only this small upper layer.
 */
export const BASE_CONTAINER = 'base';

/** Run inside the base's file tree (chroot) with the lab's public key as $1. */
const CUSTOMIZE = String.raw`set -e
key="$1"
id admin >/dev/null 2>&1 || useradd --create-home --shell /bin/bash admin
for home in /root /home/admin; do
  mkdir -p "$home/.ssh"
  printf '%s\n' "$key" > "$home/.ssh/authorized_keys"
  chmod 700 "$home/.ssh"
  chmod 600 "$home/.ssh/authorized_keys"
done
chown -R admin:admin /home/admin/.ssh
printf 'admin ALL=(ALL) NOPASSWD:ALL\n' > /etc/sudoers.d/admin
chmod 440 /etc/sudoers.d/admin
# host keys are made per host by the lab; none is shared through the base
rm -f /etc/ssh/ssh_host_*
cat > /etc/ssh/sshd_config.d/vzsb-lab.conf <<'CONF'
HostKey /etc/ssh/ssh_host_ed25519_key
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UseDNS no
CONF
# Debian's lxc-net wants dnsmasq for its lxcbr0; without it lxc.service waits 30 s at boot
# for a bridge that never comes. Hosts that run containers make their own bridge.
if [ -f /etc/default/lxc-net ]; then sed -i 's/^USE_LXC_BRIDGE=.*/USE_LXC_BRIDGE="false"/' /etc/default/lxc-net; fi
# systemd makes a fresh machine id at boot when the file is empty
: > /etc/machine-id
mkdir -p /etc/vzsb-lab
cat > /etc/vzsb-lab/init.sh <<'INIT'
#!/bin/sh
# Boot of lab hosts without systemd (init: script): busybox init runs this once, then
# reaps orphans and powers off on SIGUSR2. Services are plain daemons with pidfiles.
# Output goes to the console, whose log the lab shows when a host does not come up.
mkdir -p /run/sshd /run/lock
ip link set lo up 2>/dev/null
echo "vzsb-lab: starting sshd and cron"
/usr/sbin/sshd || echo "vzsb-lab: sshd failed to start (exit $?)"
/usr/sbin/cron || echo "vzsb-lab: cron failed to start (exit $?)"
INIT
chmod 755 /etc/vzsb-lab/init.sh
cat > /etc/inittab <<'TAB'
::sysinit:/etc/vzsb-lab/init.sh
::shutdown:/bin/kill -TERM -1
TAB
`;

export interface BaseOptions {
  lxcPath: string;
  rootfsDir: string;
  publicKey: string;
  runner: Runner;
}

export async function createBase(opts: BaseOptions): Promise<void> {
  const dir = join(opts.lxcPath, BASE_CONTAINER);
  const upper = join(dir, 'delta0');
  const work = join(dir, 'customize-work');
  const mnt = join(dir, 'customize-mnt');
  await mkdir(upper, { recursive: true });
  await mkdir(work, { recursive: true });
  await mkdir(mnt, { recursive: true });
  await writeFile(join(dir, 'config'), baseConfig(`overlay:${opts.rootfsDir}:${upper}`));
  await runChecked('mount', ['-t', 'overlay', 'overlay', '-o', `lowerdir=${opts.rootfsDir},upperdir=${upper},workdir=${work}`, mnt], {}, opts.runner);
  try {
    const result = await opts.runner('chroot', [mnt, '/bin/sh', '-c', CUSTOMIZE, 'customize', opts.publicKey], {
      env: { PATH: '/usr/sbin:/usr/bin:/sbin:/bin', LANG: 'C' },
      timeoutMs: 60_000,
    });
    if (result.failed) {
      throw new VzsbError('E_LAB_BASE', `preparing the lab base container failed (exit ${result.exitCode}): ${result.stderr.trim().split('\n').slice(-3).join(' | ')}`, {
        details: result.stderr,
      });
    }
  } finally {
    await opts.runner('umount', [mnt]);
  }
  await rm(mnt, { recursive: true, force: true });
  await rm(work, { recursive: true, force: true });
}
