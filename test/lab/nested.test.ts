import test from 'ava';
import { useLab } from '../helpers/lab.js';

/**
 * Hypervisor-like lab hosts run LXC containers of their own: an inner busybox container
 * with a static address on a bridge inside the host, reachable from the host by ping and
 * TCP, with cgroup limits applied. Both kinds of nesting host are checked: busybox-init
 * ('script') and systemd with nesting on.
 */
const fixture = useLab(test, {
  hosts: [
    { name: 'hyp-script', init: 'script' },
    { name: 'hyp-systemd', init: 'systemd', nesting: true },
  ],
});

// 10.237.1.0/24 exists only inside the host container's network namespace.
const INNER = String.raw`set -e
ip link add vzin0 type bridge forward_delay 0
ip addr add 10.237.1.1/24 dev vzin0
ip link set vzin0 up
lxc-create -n inner -t busybox >/dev/null
root=/var/lib/lxc/inner/rootfs
# the template's rcS runs udhcpc, whose default script flushes eth0: the static address would go
sed -i '/udhcpc/d' "$root/etc/init.d/rcS"
echo '::respawn:/bin/nc -l -p 7777 -e /bin/hostname' >> "$root/etc/inittab"
cat >> /var/lib/lxc/inner/config <<'CONF'
lxc.net.0.link = vzin0
lxc.net.0.ipv4.address = 10.237.1.2/24
lxc.net.0.ipv4.gateway = 10.237.1.1
lxc.cgroup.memory.limit_in_bytes = 64M
lxc.cgroup.pids.max = 64
CONF
lxc-start -n inner -d
answer=
for i in $(seq 1 100); do
  answer=$(busybox nc -w 1 10.237.1.2 7777 </dev/null 2>/dev/null || true)
  [ "$answer" = inner ] && break
  sleep 0.1
done
echo "tcp=$answer"
ping -c 1 -W 2 10.237.1.2 >/dev/null && echo ping=ok
echo "memory=$(lxc-cgroup -n inner memory.limit_in_bytes)"
echo "pids=$(lxc-cgroup -n inner pids.max)"
echo "state=$(lxc-info -n inner -s -H)"
`;

for (const name of ['hyp-script', 'hyp-systemd']) {
  test(`${name}: an inner container with a static address answers ping and TCP`, async (t) => {
    const host = fixture.host(name);
    const r = await fixture.ssh(host, 'sh -s', { input: INNER });
    t.is(r.exitCode, 0, r.stderr);
    t.deepEqual(r.stdout.trim().split('\n'), ['tcp=inner', 'ping=ok', 'memory=67108864', 'pids=64', 'state=RUNNING']);
  });
}

test('hyp-script boots busybox init with sshd and cron running', async (t) => {
  const r = await fixture.ssh(fixture.host('hyp-script'), 'cat /proc/1/comm; pgrep -x sshd >/dev/null && echo sshd; pgrep -x cron >/dev/null && echo cron');
  t.is(r.exitCode, 0, r.stderr);
  t.deepEqual(r.stdout.trim().split('\n'), ['busybox', 'sshd', 'cron']);
});
