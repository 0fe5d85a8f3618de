import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { run, type CommandResult } from '../../src/common/exec.js';
import { ensureRootfs } from '../../src/common/rootfs.js';
import { BASE_PACKAGES } from '../../src/daemons/drivers/lxc-config.js';
import type { LabHost } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter, labInventory } from '../helpers/deploy.js';
import { useDeployedSandbox, VZSB_CLI } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

// A hostile student, in a deployed lab: root in their own container through the gateway,
// trying to break out of the jail. Each attack must fail while ordinary work still works.
// Limits low enough to reach in a test; ping is not in the base by default: the lab's
// hypervisors build their base from this machine's debootstrap cache (they reach no mirror),
// so the tree is made here first.
const LIMITS = { container_memory_mib: 256, container_pids_max: 200 };
const PACKAGES = ['iputils-ping'];
const sandbox = useDeployedSandbox(test, 'hostile', {
  extraVars: { ...LIMITS, container_packages: PACKAGES },
  beforeDeploy: async () => {
    await ensureRootfs({ packages: [...BASE_PACKAGES, ...PACKAGES] });
  },
});
const { student, ssh } = sandbox;

const FULL = /No space left on device|Disk quota exceeded/;
/** The deployed defaults (playbooks/hypervisor.yaml). */
const DISK_KIB = 4096 * 1024;
const INODES = 200_000;

/** `df -P` of / in the output of `df -P -k /; df -P -i /`: [size KiB, used KiB, inodes]. */
function dfFields(stdout: string): [number, number, number] {
  const rows = stdout.trim().split('\n').filter((l) => /^\S+\s+\d+\s+\d+/.test(l));
  const k = rows[0]!.trim().split(/\s+/).map(Number);
  const i = rows[1]!.trim().split(/\s+/).map(Number);
  return [k[1]!, k[2]!, i[1]!];
}

test.serial('disk: df and df -i in the container show its quota, not the hypervisor disk', async (t) => {
  const r = await student('student1', 'df -P -k /; df -P -i /');
  t.is(r.exitCode, 0, r.stderr);
  const [size, , inodes] = dfFields(r.stdout);
  t.true(size <= DISK_KIB && size > DISK_KIB * 0.95, `df: ${r.stdout}`);
  t.true(inodes <= INODES && inodes > INODES * 0.95, `df -i: ${r.stdout}`);
});

test.serial('disk: 6 GiB cannot be written; 250,000 files cannot be made; ordinary files up to the quota can', async (t) => {
  const big = await student('student1', 'fallocate -l 6G /root/fill; echo "exit $?"; rm -f /root/fill');
  t.regex(big.stdout + big.stderr, FULL);
  t.regex(big.stdout, /exit [1-9]/);
  const many = await student('student1', 'mkdir /root/many && cd /root/many || exit 9; seq 1 250000 | xargs touch 2>&1 | tail -n 1; ls | wc -l');
  t.regex(many.stdout, FULL, many.stderr);
  t.true(Number(many.stdout.trim().split('\n').pop()) < INODES, many.stdout);
  const work = await student('student1', 'rm -rf /root/many; fallocate -l 3G /root/big && dd if=/dev/urandom of=/root/data bs=1M count=32 status=none && sync && ls -s --block-size=M /root/big /root/data && rm /root/big /root/data');
  t.is(work.exitCode, 0, work.stderr);
  t.regex(work.stdout, /^307[23]M \/root\/big$/m);
});

test.serial('disk: a full container gets ENOSPC; another student and the hypervisor still write; a reset gives the space back', async (t) => {
  const fill = await student('student1', 'hostname -I; fallocate -l "$(df -P -k / | tail -n 1 | awk "{print \\$4}")K" /root/all; dd if=/dev/zero of=/root/more bs=1M count=8 2>&1; df -P -k / | tail -n 1');
  t.regex(fill.stdout, FULL, 'the full container gets ENOSPC in its own writes');
  t.regex(fill.stdout, /\s100%\s/);
  const address = fill.stdout.trim().split(/\s+/)[0]!;
  const hyp = `hyp${address.split('.')[2]}`;
  const other = await student('student2', 'dd if=/dev/zero of=/root/mine bs=1M count=64 status=none && sync && echo written');
  t.is(other.stdout.trim(), 'written', `another student writes: ${other.stderr}`);
  const host = await ssh(hyp, 'dd if=/dev/zero of=/var/lib/vzsandbox/containers/host-write bs=1M count=16 status=none && sync && rm /var/lib/vzsandbox/containers/host-write && touch /root/host-write && rm /root/host-write && echo written');
  t.is(host.stdout.trim(), 'written', `the hypervisor ${hyp} writes: ${host.stderr}`);

  const reset = await run('node', [VZSB_CLI, 'pools', 'reset', '--all', '--force', '-i', sandbox.inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  const fresh = await waitFor('a fresh container for student1', async () => {
    const r = await student('student1', 'ls /root; df -P -k /; df -P -i /');
    return r.exitCode === 0 ? r.stdout : undefined;
  }, 120_000);
  t.notRegex(fresh, /\ball\b|\bmore\b/, 'the new container does not have the old files');
  const [, used] = dfFields(fresh);
  t.true(used < 16 * 1024, `the new container's disk is empty again: ${fresh}`);
});

test.serial('disk: the hypervisor play refuses a host without loop devices before changing anything, saying what it needs', async (t) => {
  // bal1 is a lab host without the loop devices the hypervisors get.
  const [bal, gw] = ['bal1', 'gw1'].map((n) => sandbox.lab.hosts.find((h) => h.name === n)!) as [LabHost, LabHost];
  // The play's templates name the balancers and gateways: they are listed, only bal1 is played.
  const inventory = labInventory({ hypervisors: [bal], balancers: [bal], gateways: [gw] }, { container_subnet: '10.250.9.0/24' });
  const r = collectingReporter();
  const result = await deploy({ inventory, playbook: join(import.meta.dirname, '../../playbooks/hypervisor.yaml'), limit: 'bal1', reporter: r.reporter, ssh: { knownHostsFiles: [bal.knownHostsFile] } });
  t.is(result.exitCode, 2);
  t.regex(JSON.stringify(r.hosts.map((h) => h.error)), /disk quotas are possible on this host/);
  const failed = r.tasks.find((e) => e.host === 'bal1' && e.status === 'failed');
  t.regex(failed?.stderr ?? '', /cannot give containers their disk and inode quotas: it needs loop devices \(\/dev\/loop-control/);
  t.deepEqual(r.changed('bal1'), [], 'nothing was changed');
  const after = await ssh('bal1', 'test -e /etc/vzsandbox/hypervisor.yaml || echo absent');
  t.is(after.stdout, 'absent\n');
});

/** The script as root in `user`'s container, passed base64-encoded so no shell on the way re-quotes it. */
async function inContainer(user: string, script: string): Promise<CommandResult> {
  const encoded = Buffer.from(script).toString('base64');
  return sandbox.student(user, `echo ${encoded} | base64 -d | sh`);
}

function noBreach(t: ExecutionContext, r: CommandResult, ran: RegExp): void {
  t.regex(r.stdout, ran, `the attack did not run to its end:\n${r.stdout}\n${r.stderr}`);
  t.notRegex(r.stdout, /^BROKE/m, r.stdout);
}

/** `try <what> <command...>`: BROKE <what> if the command succeeded. */
const PRELUDE = `
try() { what=$1; shift; if ( "$@" ) >/dev/null 2>&1; then echo "BROKE $what"; else echo "refused $what"; fi; }
writeback() { v=$(cat "$1" 2>/dev/null) || return 1; printf '%s\\n' "$v" > "$1"; }
`;

/** Perl (in every Debian base: perl-base) calls raw syscalls: prints "<name> <rc> <errno>". */
const SYSCALLS = `
cat > /tmp/sc.pl <<'EOF'
# Buffers in variables: perl refuses to pass a literal to syscall (it may be written to).
my ($t, $d, $x, $e, $m) = ("user", "vzsb", "x", "", "loop");
my %calls = (
  bpf_map_create   => sub { my $a = pack("LLLL", 1, 4, 4, 1) . ("\\0" x 56); syscall(321, 0, $a, 72) },
  perf_event_open  => sub { my $a = pack("LL", 1, 128) . ("\\0" x 120); syscall(298, $a, 0, -1, -1, 0) },
  keyctl_session   => sub { syscall(250, 0, -3, 1) },
  keyctl_user      => sub { syscall(250, 0, -4, 1) },
  add_key          => sub { syscall(248, $t, $d, $x, 1, -4) },
  request_key      => sub { syscall(249, $t, $d, 0, 0) },
  init_module      => sub { syscall(175, 0, 0, $e) },
  finit_module     => sub { syscall(313, 0, $e, 0) },
  delete_module    => sub { syscall(176, $m, 0) },
  kexec_load       => sub { syscall(246, 0, 0, 0, 0) },
  open_by_handle_at => sub { my $h = pack("LLQ", 8, 1, 2); syscall(304, -100, $h, 0) },
  syslog_read_all  => sub { my $b = " " x 4096; syscall(103, 3, $b, 4096) },
);
for my $name (sort keys %calls) {
  $! = 0;
  my $rc = $calls{$name}->();
  printf "%s %d %d\\n", $name, $rc, $rc < 0 ? $! + 0 : 0;
}
EOF
perl /tmp/sc.pl
`;

interface Attack {
  title: string;
  /** a student of the lab; attacks that exhaust a limit get a container of their own */
  user: string;
  script: string;
  check(t: ExecutionContext, r: CommandResult): void;
}

const attacks: Attack[] = [
  {
    title: 'a fresh proc or sysfs mount cannot write kernel settings (core_pattern, sysrq, sysfs knobs)',
    user: 'student1',
    script: `${PRELUDE}
p=$(mktemp -d); s=$(mktemp -d)
mount -t proc proc "$p" 2>/dev/null && echo mounted-proc
try core_pattern-fresh-proc writeback "$p/sys/kernel/core_pattern"
try core_pattern writeback /proc/sys/kernel/core_pattern
try sysrq-fresh-proc writeback "$p/sys/kernel/sysrq"
try modprobe-path writeback "$p/sys/kernel/modprobe"
try sysrq-trigger sh -c "echo h > $p/sysrq-trigger"
umount "$p" 2>/dev/null
mount -t sysfs sysfs "$s" 2>/dev/null && echo mounted-sysfs
for f in module/printk/parameters/time kernel/uevent_helper kernel/mm/transparent_hugepage/defrag; do
  [ -e "$s/$f" ] && try "sysfs-$f" writeback "$s/$f"
  [ -e "/sys/$f" ] && try "sys-$f" writeback "/sys/$f"
done
umount "$s" 2>/dev/null
echo done`,
    check(t, r) {
      noBreach(t, r, /^done$/m);
      t.regex(r.stdout, /^refused core_pattern-fresh-proc$/m);
      t.regex(r.stdout, /^refused sysfs-module\/printk\/parameters\/time$/m);
    },
  },
  {
    title: 'the pids limit cannot be raised through a cgroup mount, and holds: a fork bomb stops at it',
    user: 'student3',
    script: `${PRELUDE}
for c in pids memory; do mkdir -p /tmp/cg-$c; mount -t cgroup -o $c cgroup /tmp/cg-$c 2>/dev/null && echo mounted-$c; done
try pids.max-fresh-mount sh -c 'echo max > /tmp/cg-pids/pids.max'
try pids.max-own-mount sh -c 'echo max > /sys/fs/cgroup/pids/pids.max'
mkdir -p /tmp/cg2; if mount -t cgroup2 none /tmp/cg2 2>/dev/null; then try pids.max-cgroup2 sh -c 'echo max > /tmp/cg2/pids.max'; fi
# A sub-cgroup of its own may say "max": the limit above it still counts.
if mkdir /tmp/cg-pids/mine 2>/dev/null && echo 100000 > /tmp/cg-pids/mine/pids.max && echo $$ > /tmp/cg-pids/mine/cgroup.procs; then echo moved-to-own-cgroup; fi
( i=0; while [ $i -lt 400 ]; do sleep 120 & i=$((i+1)); done ) 2>/dev/null
# At the limit nothing can fork: count and clean up with shell builtins only.
n=0; s=0
for p in /proc/[0-9]*; do n=$((n+1)); read -r c < "$p/comm" 2>/dev/null && [ "$c" = sleep ] && s=$((s+1)) && kill "\${p#/proc/}"; done
echo "tasks $n sleeps $s"
echo done`,
    check(t, r) {
      noBreach(t, r, /^done$/m);
      const [, tasks, sleeps] = /^tasks (\d+) sleeps (\d+)$/m.exec(r.stdout) ?? [];
      t.true(Number(sleeps) > 0 && Number(sleeps) < 400, `the fork bomb ran into the limit: ${sleeps} of 400 started`);
      t.true(Number(tasks) <= LIMITS.container_pids_max, `at most ${LIMITS.container_pids_max} tasks, saw ${tasks}`);
    },
  },
  {
    title: 'the memory limit cannot be raised through a cgroup mount, and holds: a hog is killed at it',
    user: 'student3',
    script: `${PRELUDE}
mkdir -p /tmp/cg-memory; mount -t cgroup -o memory cgroup /tmp/cg-memory 2>/dev/null && echo mounted-memory
try memory-fresh-mount sh -c 'echo -1 > /tmp/cg-memory/memory.limit_in_bytes'
try memsw-fresh-mount sh -c 'echo -1 > /tmp/cg-memory/memory.memsw.limit_in_bytes'
try memory-own-mount sh -c 'echo -1 > /sys/fs/cgroup/memory/memory.limit_in_bytes'
mkdir -p /tmp/cg2; if mount -t cgroup2 none /tmp/cg2 2>/dev/null; then try memory.max-cgroup2 sh -c 'echo max > /tmp/cg2/memory.max'; fi
perl -e '$x = "x" x (600 * 1024 * 1024); print length($x), "\\n"'; echo "hog exit $?"
echo done`,
    check(t, r) {
      noBreach(t, r, /^done$/m);
      t.regex(r.stdout, /^hog exit 137$/m, 'killed (SIGKILL) by the OOM killer of its own cgroup');
    },
  },
  {
    title: "the host's block devices cannot be read, nor made",
    user: 'student1',
    script: `${PRELUDE}
n=0
for d in /sys/block/*; do
  dev=$(cat "$d/dev") || continue; n=$((n+1))
  try "mknod-$(basename "$d")" mknod "/tmp/blk-$(basename "$d")" b "\${dev%:*}" "\${dev#*:}"
  [ -b "/tmp/blk-$(basename "$d")" ] && try "read-$(basename "$d")" head -c 512 "/tmp/blk-$(basename "$d")"
done
for b in /dev/*; do [ -b "$b" ] && try "read-$b" head -c 512 "$b"; done
echo "devices $n"
echo done`,
    check(t, r) {
      noBreach(t, r, /^done$/m);
      t.regex(r.stdout, /^devices [1-9]\d*$/m, 'the host has block devices to try');
    },
  },
  {
    title: 'no kernel log: dmesg, /dev/kmsg and /proc/kmsg are refused',
    user: 'student1',
    script: `${PRELUDE}
try dmesg dmesg
try dev-kmsg sh -c 'test -e /dev/kmsg && dd if=/dev/kmsg bs=1k count=1 iflag=nonblock'
try proc-kmsg dd if=/proc/kmsg bs=1k count=1 iflag=nonblock
echo done`,
    check(t, r) {
      noBreach(t, r, /^done$/m);
      t.regex(r.stdout, /^refused dmesg$/m);
    },
  },
  {
    title: 'bpf, perf_event_open, keyctl on host keyrings, module and kexec calls fail with EPERM (our seccomp profile)',
    user: 'student1',
    script: `grep '^Seccomp:' /proc/self/status\n${SYSCALLS}echo done`,
    check(t, r) {
      t.regex(r.stdout, /^done$/m, r.stderr);
      t.regex(r.stdout, /^Seccomp:\s+2$/m, 'a seccomp filter is in force');
      const results = new Map(
        r.stdout
          .split('\n')
          .map((l) => l.split(' '))
          .filter((f) => f.length === 3)
          .map(([name, rc, errno]) => [name!, { rc: Number(rc), errno: Number(errno) }]),
      );
      for (const name of ['bpf_map_create', 'perf_event_open', 'keyctl_session', 'keyctl_user', 'add_key', 'request_key', 'init_module', 'finit_module', 'delete_module', 'kexec_load', 'open_by_handle_at', 'syslog_read_all']) {
        t.deepEqual(results.get(name), { rc: -1, errno: 1 }, `${name}: expected -1 EPERM\n${r.stdout}\n${r.stderr}`);
      }
    },
  },
  // The disk and inode attacks are the disk: tests above.
];

for (const attack of attacks) {
  test.serial(`hostile student: ${attack.title}`, async (t) => {
    const r = await inContainer(attack.user, attack.script);
    attack.check(t, r);
  });
}

test.serial('ordinary work still works: container root is an unprivileged host id range of its own', async (t) => {
  const r = await inContainer('student2', 'id -u; cat /proc/self/uid_map');
  const [uid, map] = r.stdout.trim().split('\n');
  t.is(uid, '0');
  const [inside, outside, count] = map!.trim().split(/\s+/).map(Number);
  t.deepEqual([inside, count], [0, 65536]);
  t.true(outside! >= 1_000_000_000, `mapped to host uid ${outside}`);
  const other = await inContainer('student1', 'cat /proc/self/uid_map');
  t.not(other.stdout.trim().split(/\s+/)[1], String(outside), 'another student has other host ids');
});

test.serial('ordinary work still works: add a user and switch to it', async (t) => {
  const r = await inContainer('student2', 'useradd -m alice && su - alice -c "id -un; echo hi > ~/note && cat ~/note"');
  t.is(r.stdout, 'alice\nhi\n', r.stderr);
});

test.serial('ordinary work still works: ip, and ping of its own gateway', async (t) => {
  const r = await inContainer('student2', `ip -4 -o addr show eth0; gw=$(ip route show default | awk '{print $3}'); echo "gw $gw"; ping -c 1 -W 3 "$gw" >/dev/null && echo pong`);
  t.regex(r.stdout, /eth0\s+inet 10\.250\.\d+\.\d+\/24/, r.stderr);
  t.regex(r.stdout, /^gw 10\.250\.\d+\.1$/m);
  t.regex(r.stdout, /^pong$/m, r.stderr);
});

test.serial('ordinary work still works: a background process outlives the login; tmpfs mounts', async (t) => {
  const first = await inContainer('student2', 'setsid sleep 300 >/dev/null 2>&1 < /dev/null & echo started');
  t.is(first.stdout, 'started\n');
  const second = await inContainer('student2', 'pgrep -x sleep >/dev/null && echo alive; pkill -x sleep; mount -t tmpfs tmpfs /mnt && echo x > /mnt/f && cat /mnt/f && umount /mnt && echo unmounted');
  t.is(second.stdout, 'alive\nx\nunmounted\n', second.stderr);
});

test.serial("a student who makes their container's sshd unreachable does not make its hypervisor refuse the other students", async (t) => {
  // Root in the container cannot kill its sshd (it is the container's init), but can fill its
  // MaxStartups with unauthenticated connections: every new connection, the hypervisor's health
  // probe's included, is then closed without a banner. Unreachable: a new connection gets none.
  const holder = "use Socket; my @s; for (1..150) { socket(my $s, PF_INET, SOCK_STREAM, 0) or last; connect($s, pack_sockaddr_in(22, inet_aton(q(127.0.0.1)))); push @s, $s } sleep 120";
  const script = [
    "hostname -I | cut -d' ' -f1",
    `setsid perl -e '${holder}' </dev/null >/dev/null 2>&1 &`,
    'for i in $(seq 1 100); do',
    "  b=$(timeout 2 bash -c 'exec 3<>/dev/tcp/127.0.0.1/22 && head -c 4 <&3' 2>/dev/null)",
    '  [ "$b" = SSH- ] || { echo unreachable; break; }',
    '  sleep 0.1',
    'done',
  ].join('\n');
  const r = await inContainer('student3', script);
  t.teardown(() => run('node', [VZSB_CLI, 'pools', 'reset', '--user', 'student3', '--force', '--wait', '-i', sandbox.inventory]).then(() => undefined));
  const [address, unreachable] = r.stdout.trim().split('\n');
  t.is(unreachable, 'unreachable', r.stdout + r.stderr);
  const hyp = address!.startsWith('10.250.1.') ? 'hyp1' : 'hyp2';
  const health = async () => {
    const out = await ssh(hyp, `node -e "fetch('http://127.0.0.1:8750/healthz').then((r) => r.text()).then((t) => console.log(t))"`);
    return JSON.parse(out.stdout) as { status: string; degraded: string[]; checks: { network?: { sshProbe?: { container: string } } } };
  };
  // Several checks (each report is kept 1 s): the probes take clean containers only.
  for (let i = 0; i < 4; i++) {
    const h = await health();
    t.is(h.status, 'ok', JSON.stringify(h));
    await new Promise((resolve) => setTimeout(resolve, 1100));
  }
  const other = await student('student1', 'echo in');
  t.is(other.exitCode, 0, other.stderr);
  t.is(other.stdout, 'in\n');
});
