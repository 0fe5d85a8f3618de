import { CONTROL_PROGRAMS, LXC_CONFIG_DIR, LXC_CONFIG_FILES, LXC_CONFIG_PACKAGE, SYSTEM_BIN_DIRS } from '../common/system-files.js';

/**
 * What a machine must have before vzsandbox changes anything on it, as one table.
 *
 * Each check is a POSIX sh snippet, so the same table serves `vzsb doctor` and the lab's
 * pre-flight on this machine (run by sh here) and the roles' pre-flight on deployed hosts (a
 * fact, gathered in the facts round trip, before Node.js or any package is there). A snippet
 * exits 0 when the machine has what it checks and prints one line of detail either way;
 * `fix` names the package, sysctl or setting that provides it.
 *
 * The roots it reads are variables, so a test can point one elsewhere: VZSB_PROC (/proc),
 * VZSB_SYS (/sys), VZSB_DEV (/dev), VZSB_CGROUP (/sys/fs/cgroup), VZSB_LXC_CONFIG
 * (/usr/share/lxc/config), VZSB_BIN_DIRS (the system's bin directories), VZSB_MODULES
 * (/lib/modules/`uname -r`), and VZSB_LAB_HOSTS (the lab size the inotify limits must allow).
 *
 * To add a check: one entry in CHECKS (an id, where it applies, the snippet, the fix).
 */
export type Place = 'control' | 'hypervisor' | 'balancer' | 'gateway';

export interface HostCheck {
  /** stable, dotted: kernel.*, cgroup.*, packages.*, limits.* */
  id: string;
  /** what is checked, for people */
  title: string;
  /** where it applies: this machine (doctor, lab up) and/or the hosts of a role */
  on: readonly Place[];
  /** POSIX sh: exit 0 = present; one line of detail on stdout */
  sh: string;
  /** what provides it when missing: a package, a sysctl, a boot setting */
  fix: string;
  /** `vzsb lab up` raises this itself (and says so) instead of failing */
  labRaises?: boolean;
}

/** Shell helpers the snippets share; defined once at the top of the script. */
export const CHECK_PRELUDE = `P=\${VZSB_PROC:-/proc}; S=\${VZSB_SYS:-/sys}; D=\${VZSB_DEV:-/dev}; CG=\${VZSB_CGROUP:-/sys/fs/cgroup}
M=\${VZSB_MODULES:-/lib/modules/$(uname -r 2>/dev/null)}
vzsb_kfeature() { # name symbol: loaded or built in (a kernel symbol), or a module that can be loaded
  grep -q " $2\$" "$P/kallsyms" 2>/dev/null || [ -d "$S/module/$1" ] || { [ -d "$M" ] && find "$M" -name "$1.ko*" 2>/dev/null | grep -q .; }
}
vzsb_cgroup() { # controller: enabled, and mounted where LXC looks (v2: listed at the root; v1: its own hierarchy)
  awk -v c="$1" '$1 == c && $4 == 1 { f = 1 } END { exit !f }' "$P/cgroups" 2>/dev/null || return 1
  if [ -f "$CG/cgroup.controllers" ]; then grep -qw "$1" "$CG/cgroup.controllers"; else [ -d "$CG/$1" ] || ls -d "$CG/"*"$1"* >/dev/null 2>&1; fi
}
`;

const kernel = (id: string, title: string, module: string, symbol: string, on: readonly Place[], fix: string): HostCheck => ({
  id: `kernel.${id}`,
  title,
  on,
  sh: `vzsb_kfeature ${module} ${symbol} && echo "${module}: available" || { echo "${module}: neither built in, loaded nor loadable"; exit 1; }`,
  fix,
});

const cgroup = (controller: string, why: string): HostCheck => ({
  id: `cgroup.${controller}`,
  title: `cgroup controller ${controller} (${why})`,
  on: ['control', 'hypervisor'],
  sh: `vzsb_cgroup ${controller} && echo "${controller}: enabled and mounted" || { echo "${controller}: not enabled or not mounted under $CG"; exit 1; }`,
  fix: `a kernel with the ${controller} controller enabled (kernel command line cgroup_enable=${controller}; for cgroup v2, systemd.unified_cgroup_hierarchy=1 and the controller in cgroup.subtree_control)`,
});

/** One check per package: its programs are all in the system's bin directories. */
function programChecks(): HostCheck[] {
  const byPackage = new Map<string, string[]>();
  for (const [program, pkg] of Object.entries(CONTROL_PROGRAMS)) byPackage.set(pkg, [...(byPackage.get(pkg) ?? []), program]);
  return [...byPackage].map(([pkg, programs]) => ({
    id: `packages.${pkg}`,
    title: `${programs.join(', ')} (${pkg})`,
    on: ['control'] as const,
    sh: [
      'missing=',
      `for p in ${programs.join(' ')}; do f=; for d in \${VZSB_BIN_DIRS:-${SYSTEM_BIN_DIRS.join(' ')}}; do [ -x "$d/$p" ] && f=1 && break; done; [ -n "$f" ] || missing="$missing $p"; done`,
      `[ -z "$missing" ] && echo "found: ${programs.join(' ')}" || { echo "not found:$missing"; exit 1; }`,
    ].join('\n'),
    fix: `apt-get install --no-install-recommends ${pkg} (scripts/install-deps.sh installs it)`,
  }));
}

/** What one systemd lab host takes, with headroom: measured 6 instances (systemd 5, agetty 1) and 22 watches (docs/lab.md). */
export const INOTIFY_INSTANCES_PER_LAB_HOST = 8;
export const INOTIFY_WATCHES_PER_LAB_HOST = 256;

export const CHECKS: readonly HostCheck[] = [
  {
    id: 'system.root',
    title: 'running as root',
    on: ['control'],
    sh: 'u=$(id -u); [ "$u" = 0 ] && echo "uid 0" || { echo "uid $u"; exit 1; }',
    fix: 'run as root (the lab and the tests make containers, bridges and firewall tables)',
  },
  {
    id: 'kernel.userns',
    title: 'user namespaces (unprivileged containers)',
    on: ['control', 'hypervisor'],
    sh: 'n=$(cat "$P/sys/user/max_user_namespaces" 2>/dev/null || echo 0); [ "$n" -gt 0 ] && echo "user.max_user_namespaces = $n" || { echo "user.max_user_namespaces = $n"; exit 1; }',
    fix: 'sysctl user.max_user_namespaces=15000 (and a kernel built with CONFIG_USER_NS)',
  },
  {
    id: 'kernel.overlay',
    title: 'overlay filesystem (containers are overlay clones of one base)',
    on: ['control', 'hypervisor'],
    sh: 'if grep -qw overlay "$P/filesystems" 2>/dev/null || vzsb_kfeature overlay ovl_fill_super; then echo "overlay: available"; else echo "overlay: not in $P/filesystems and no module"; exit 1; fi',
    fix: 'modprobe overlay (a kernel with CONFIG_OVERLAY_FS)',
  },
  kernel('veth', 'veth pairs (container network interfaces)', 'veth', 'veth_xmit', ['control', 'hypervisor'], 'modprobe veth (a kernel with CONFIG_VETH)'),
  kernel('bridge', 'Linux bridges (the containers\' and the lab\'s networks)', 'bridge', 'br_dev_xmit', ['control', 'hypervisor'], 'modprobe bridge (a kernel with CONFIG_BRIDGE)'),
  kernel('nftables', 'nftables (every role\'s firewall, the lab\'s isolation)', 'nf_tables', 'nf_tables_newtable', ['control', 'hypervisor', 'balancer', 'gateway'], 'modprobe nf_tables (a kernel with CONFIG_NF_TABLES)'),
  {
    id: 'kernel.br_netfilter',
    title: 'br_netfilter state (bridged traffic through the inet forward chains or not)',
    on: ['control', 'hypervisor'],
    // Either state works: the firewalls match on interfaces. Reported so a difference between
    // machines is visible.
    sh: 'f="$P/sys/net/bridge/bridge-nf-call-iptables"; if [ -r "$f" ]; then echo "br_netfilter on: bridge-nf-call-iptables = $(cat "$f"), bridge-nf-call-ip6tables = $(cat "$P/sys/net/bridge/bridge-nf-call-ip6tables" 2>/dev/null)"; else echo "br_netfilter off: bridged traffic skips the inet forward chains"; fi',
    fix: 'nothing (either state works)',
  },
  {
    id: 'kernel.loop',
    title: 'loop devices (file-backed filesystems)',
    on: ['control'],
    sh: 'if [ -e "$D/loop-control" ]; then echo "$D/loop-control present"; elif vzsb_kfeature loop loop_configure; then echo "loop: available"; else echo "no $D/loop-control and no loop module"; exit 1; fi',
    fix: 'modprobe loop (a kernel with CONFIG_BLK_DEV_LOOP)',
  },
  {
    id: 'cgroup.layout',
    title: 'cgroup layout (v1, hybrid or v2)',
    on: ['control', 'hypervisor'],
    sh: 'if [ -f "$CG/cgroup.controllers" ]; then echo "cgroup v2 at $CG: $(cat "$CG/cgroup.controllers")"; elif [ -d "$CG/memory" ] || [ -d "$CG/pids" ]; then echo "cgroup v1$([ -d "$CG/unified" ] && echo " hybrid (cgroup2 at $CG/unified)")"; else echo "no cgroup hierarchy under $CG"; exit 1; fi',
    fix: 'mount the cgroup hierarchies (systemd or cgroupfs-mount does at boot)',
  },
  cgroup('memory', 'container memory limits'),
  cgroup('pids', 'container process limits'),
  cgroup('cpu', 'container CPU shares'),
  {
    id: 'limits.inotify_instances',
    title: 'inotify instances per user (systemd in every lab host takes several)',
    on: ['control'],
    labRaises: true,
    sh: [
      'n=${VZSB_LAB_HOSTS:-4}; max=$(cat "$P/sys/fs/inotify/max_user_instances" 2>/dev/null || echo 0)',
      // root's instances already open: every privileged container's systemd counts as root too
      'used=$(find "$P"/[0-9]*/fd -lname "anon_inode:inotify" 2>/dev/null | wc -l)',
      `need=$((used + n * ${INOTIFY_INSTANCES_PER_LAB_HOST} + 32))`,
      '[ "$max" -ge "$need" ] && echo "fs.inotify.max_user_instances = $max (about $need needed for $n more lab hosts)" || { echo "fs.inotify.max_user_instances = $max, about $need needed for $n lab hosts ($used in use)"; exit 1; }',
    ].join('\n'),
    fix: 'sysctl fs.inotify.max_user_instances=<needed> (vzsb lab up raises it itself, until reboot)',
  },
  {
    id: 'limits.inotify_watches',
    title: 'inotify watches per user',
    on: ['control'],
    labRaises: true,
    sh: `n=\${VZSB_LAB_HOSTS:-4}; max=$(cat "$P/sys/fs/inotify/max_user_watches" 2>/dev/null || echo 0); need=$((8192 + n * ${INOTIFY_WATCHES_PER_LAB_HOST}))
[ "$max" -ge "$need" ] && echo "fs.inotify.max_user_watches = $max" || { echo "fs.inotify.max_user_watches = $max, about $need needed for $n lab hosts"; exit 1; }`,
    fix: 'sysctl fs.inotify.max_user_watches=<needed> (vzsb lab up raises it itself, until reboot)',
  },
  {
    id: 'files.lxc_config',
    title: `LXC config snippets (${LXC_CONFIG_FILES.join(', ')})`,
    on: ['control'],
    sh: `dir=\${VZSB_LXC_CONFIG:-${LXC_CONFIG_DIR}}; missing=; for f in ${LXC_CONFIG_FILES.join(' ')}; do [ -r "$dir/$f" ] || missing="$missing $dir/$f"; done
[ -z "$missing" ] && echo "found in $dir" || { echo "not found:$missing"; exit 1; }`,
    fix: `apt-get install --no-install-recommends ${LXC_CONFIG_PACKAGE} (comes with lxc; scripts/install-deps.sh installs it)`,
  },
  ...programChecks(),
];

export interface CheckResult {
  check: HostCheck;
  ok: boolean;
  detail: string;
}

/** The checks that apply to a place (or several: a host with two roles). */
export function checksFor(places: readonly Place[], checks: readonly HostCheck[] = CHECKS): HostCheck[] {
  return checks.filter((c) => c.on.some((p) => places.includes(p)));
}

/**
 * One sh script running every check given, each in its own subshell so none can stop the
 * others; prints `<marker> <index> <exit code> <detail>` per check. Always exits 0.
 */
export function checksScript(checks: readonly HostCheck[], marker: string): string {
  const body = checks.map((c, i) => `vzsb_rc=0; vzsb_out=$( (\n${c.sh}\n) 2>&1 </dev/null ) || vzsb_rc=$?\nprintf '%s %s %s %s\\n' ${marker} ${i} "$vzsb_rc" "$(printf '%s' "$vzsb_out" | tr '\\n' ' ')"`);
  return [CHECK_PRELUDE, ...body, 'true'].join('\n');
}

export function parseCheckOutput(checks: readonly HostCheck[], stdout: string, marker: string): CheckResult[] {
  const seen = new Map<number, { rc: number; detail: string }>();
  for (const line of stdout.split('\n')) {
    const m = new RegExp(`^${marker} (\\d+) (\\d+) ?(.*)$`).exec(line);
    if (m) seen.set(Number(m[1]), { rc: Number(m[2]), detail: m[3]!.trim() });
  }
  return checks.map((check, i) => {
    const r = seen.get(i);
    return { check, ok: r?.rc === 0, detail: r ? r.detail : 'the check did not run' };
  });
}

/** "missing: <title>: <detail>; fix: <fix>", one line per failed check. */
export function describeFailures(results: readonly CheckResult[]): string[] {
  return results.filter((r) => !r.ok).map((r) => `${r.check.id}: ${r.check.title}: ${r.detail}; fix: ${r.check.fix}`);
}
