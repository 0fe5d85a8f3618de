#!/usr/bin/env bash
# Installs the system packages and npm modules vzsandbox needs on this machine (Debian 12, as root).
set -euo pipefail
cd "$(dirname "$0")/.."
# Each package is installed without its Recommends: whatever the code uses must be here or a hard
# dependency of one (test/system/packages.test.ts checks it). time: /usr/bin/time in bench:login.
# e2fsprogs and mount: mkfs.ext4 and losetup for the containers' disk volumes. conntrack: session
# liveness reads connection tracking with it where the kernel has no /proc/net/nf_conntrack.
# ansible: the collections bundle; ansible.posix's sysctl is the oracle of the comparison tests.
PACKAGES=(lxc openssh-server openssh-client nftables conntrack debootstrap ansible-core ansible tmux
          busybox-static iproute2 bridge-utils sudo uidmap rsync cron procps time e2fsprogs mount)
missing=()
for p in "${PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "installing: ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi
# The system sshd is not needed: tests and the lab start their own.
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run build
