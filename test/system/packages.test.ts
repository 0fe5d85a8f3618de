/**
 * Every system file and program the sources name outside the project belongs to a package
 * that is installed on purpose: by scripts/install-deps.sh for this machine (the lab, the
 * tests, the drivers run here), by the role's package task for deployed hosts, by the base
 * package lists for the inside of containers and lab hosts, or a hard dependency of one of
 * those (Depends/PreDepends; a Recommends does not count: installs run without Recommends).
 * Essential packages count everywhere (dpkg never removes them; debootstrap always has them).
 *
 * The references come from a scan of the sources (test/helpers/system-refs.ts), so a new
 * path cannot escape. Ownership comes from `dpkg-query -S` here, dependencies from the dpkg
 * status and, for packages not installed here, `apt-cache depends`.
 */
import test from 'ava';
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, realpathSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { parse } from 'yaml';
import { CONTROL_PROGRAMS, LXC_CONFIG_FILES, LXC_CONFIG_PACKAGE, SYSTEM_BIN_DIRS, lxcConfigFile } from '../../src/common/system-files.js';
import { BASE_PACKAGES } from '../../src/daemons/drivers/lxc-config.js';
import { LAB_HOST_PACKAGES } from '../../src/lab/packages.js';
import { collectSystemRefs, commandWords, stringLiterals, type Context, type SystemRef } from '../helpers/system-refs.js';

const root = join(import.meta.dirname, '..', '..');

/** Paths that no package ships, on purpose: the project makes them, the kernel or the admin does. */
const NOT_FROM_PACKAGES: Array<[RegExp, string]> = [
  [/^\/(etc|var\/lib|var\/cache|var\/log|opt|usr\/local\/lib|run)\/vzsandbox(\/|$)/, 'made by vzsandbox'],
  [/^\/(etc|var\/lib|run|usr\/local\/lib)\/vzsb(\/|$)/, 'made by vzsb (services fallback, pending handlers)'],
  [/^\/usr\/local\//, 'installed by the roles (vzsb, vzsb-shell)'],
  [/^\/etc\/(cron\.d|sysctl\.d|nftables\.d|sudoers\.d|tmpfiles\.d|systemd\/system|ssh\/sshd_config\.d)\/./, 'a drop-in the project writes (its directory is a package\'s)'],
  [/^\/etc\/ssh\/(ssh_host_|vzsb-)/, 'host keys and key directories the project makes'],
  [/^\/sbin\/vzsb-init$/, "the containers' init, written into each base"],
  [/^\/etc\/(shells|hostname|hosts|machine-id|passwd|group|shadow|subuid|subgid|resolv\.conf|fstab|apt\/sources\.list(\.d\/debian\.sources)?)$/, 'machine configuration made at install time, not shipped by a package'],
  [/^\/etc\/(default\/lxc-net|lxc\/default\.conf)$/, "lxc's configuration, made by its maintainer scripts"],
  [/^\/etc\/(vzsb-lab(\/|$)|inittab$)/, 'written into the lab base by the lab'],
  [/^\/etc\/vzsb-/, 'files the tests make on their hosts'],
  [/^\/usr\/bin\/x$/, 'an example in an error message'],
  [/^\/etc\/(sudoers\.d|cron\.d|ssh|systemd\/system|nftables\.d|sysctl\.d|tmpfiles\.d)\/?$/, 'a standard directory'],
];

/** Programs the code runs that no Debian 12 package ships: only on other systems, tested against a fake. */
const NOT_DEBIAN: Record<string, string> = {
  vzctl: 'OpenVZ (the OpenVZ driver; tests use a fake, test/fixtures/openvz)',
  vzlist: 'OpenVZ',
  prlctl: 'OpenVZ 7',
  vzsb: "the project's own command (/usr/local/bin/vzsb on hosts)",
};

/** What the README asks for before anything on this machine: Node 20 with npm (install-deps does not install them). */
const PREREQUISITES: Record<string, string> = { node: 'Node 20 (README)', npm: 'npm, with Node 20 (README)' };
const PREREQUISITE_PACKAGES = new Set(['nodejs']);

/** References that are fine without a package of their own: optional, and used only where present. */
const OPTIONAL: Array<{ file: RegExp; value: RegExp; why: string }> = [
  { file: /^src\/provision\/(facts\/service|operations\/service(-helper)?)\.ts$/, value: /^(systemctl|\/(usr\/)?lib\/systemd\/system)$/, why: 'only where PID 1 is systemd; the fallback runs services elsewhere' },
  { file: /^test\/lab\/nested\.test\.ts$/, value: /^\/bin\/(nc|hostname)$/, why: 'busybox applets inside the inner busybox container' },
  { file: /^test\/lab\/upgrade\.test\.ts$/, value: /^\/usr\/share\/lxc\/config\/debian\.common\.conf$/, why: 'the include of older lab configs, which the lab rewrites away' },
  { file: /^src\/doctor\/checks\.ts$/, value: /^(sysctl|modprobe|apt-get)$/, why: 'advice in the fix texts, for the admin to run' },
  { file: /^src\/provision\/operations\/nftables\.ts$/, value: /^ip$/, why: "nftables' family name in a table's name, not the program" },
  { file: /^src\/daemons\/drivers\/subids\.ts$/, value: /^\/usr\/bin\/newuidmap$/, why: 'only tested for: where uidmap is installed LXC uses it, and the grant in /etc/subuid must cover the ids' },
  { file: /^src\/daemons\/drivers\/bridge-guard\.ts$/, value: /^(\/usr\/sbin\/)?arp$/, why: "nftables' arp protocol in a rule, not the program" },
  { file: /^src\/provision\/operations\/file\.ts$/, value: /^(\/usr\/bin\/)?file$/, why: 'the word in an error message, not the program' },
  { file: /^src\/provision\/operations\/user\.ts$/, value: /^(\/usr\/bin\/)?(ssh-keygen|ssh)$/, why: 'only for a user task with generate_ssh_key, which no role play has' },
  { file: /^src\/provision\/facts\/crontab\.ts$/, value: /^(\/usr\/bin\/)?crontab$/, why: "only for user crontabs (cron without cron_file), which no role play has" },
  { file: /^src\/provision\/operations\/cron\.ts$/, value: /^\/etc\/crontab$/, why: 'named only to refuse managing it' },
  { file: /^src\/provision\/operations\/cron\.ts$/, value: /^(\/usr\/bin\/)?crontab$/, why: 'only for user crontabs (cron without cron_file), which no role play has' },
  { file: /^playbooks\/gateway\.yaml$/, value: /^\/etc\/motd$/, why: 'written by the play itself (machine configuration, shipped by no package)' },
  { file: /^test\/e2e\/network\.test\.ts$/, value: /^\/etc\/motd$/, why: "the gateway's motd, read over ssh on the lab gateway (written by playbooks/gateway.yaml)" },
  { file: /^test\/provision\/ansible-compare\/cases\/cron\.ts$/, value: /^\/(usr\/)?bin\/(backup|a|b)$/, why: 'job lines written into a sandbox crontab file, never run' },
];

const deps = installDepsPackages();
const hasDpkg = spawnSync('dpkg-query', ['--version']).status === 0;
const notInstalled = hasDpkg ? deps.filter((p) => !installed(p)) : [];
const skipReason = !hasDpkg ? 'no dpkg on this machine (not Debian): ownership cannot be checked' : notInstalled.length ? `scripts/install-deps.sh has not been run here (not installed: ${notInstalled.join(', ')})` : undefined;
const dpkgTest = skipReason ? test.skip : test;
if (skipReason) console.log(`test/system/packages.test.ts skipped: ${skipReason}`);

test('the scan finds the LXC includes, the lab and driver helpers, and shell commands of playbooks and fact snippets', (t) => {
  const refs = collectSystemRefs(root);
  const has = (kind: SystemRef['kind'], value: string, file: RegExp) => refs.some((r) => r.kind === kind && r.value === value && file.test(r.file));
  t.true(has('path', '/usr/share/lxc/config/common.conf', /^src\/daemons\/drivers\/lxc\.ts$/));
  t.true(has('path', '/usr/share/lxc/config/userns.conf', /^src\/daemons\/drivers\/lxc-config\.ts$/));
  t.true(has('program', 'lxc-copy', /^src\//));
  t.true(has('program', 'ip', /^src\/lab\//));
  t.true(has('program', 'ssh-keygen', /^src\//));
  t.true(has('path', '/usr/sbin/nft', /^src\/lab\/firewall\.ts$/));
  t.true(has('program', 'visudo', /^playbooks\/gateway\.yaml$/));
  t.true(has('program', 'ip', /^playbooks\/gateway\.yaml$/));
  t.true(has('program', 'dpkg-query', /^src\/provision\/facts\//));
  // the lab's host config no longer names a file of lxc-templates (a Recommends only)
  t.false(refs.some((r) => r.value.includes('debian.common.conf') && r.file.startsWith('src/')));
  t.deepEqual(
    commandWords('set -e\nif [ -x /x ]; then FOO=1 nft list ruleset | grep -q x && exec sshd -D; fi\n$(getent passwd a)').map((w) => w.word),
    ['nft', 'grep', 'sshd', 'getent'],
  );
  t.deepEqual(stringLiterals("a('x y') // 'not'\nb(`p ${q('z')} r`)").map((s) => s.text), ['x y', 'p X r']);
});

dpkgTest('every system path and program the sources name belongs to a package installed on purpose, or a hard dependency of one', (t) => {
  const sets: Record<Context, readonly string[]> = {
    control: deps,
    hypervisor: rolePackages('hypervisor.yaml'),
    balancer: rolePackages('balancer.yaml'),
    gateway: rolePackages('gateway.yaml'),
    container: BASE_PACKAGES,
    labhost: LAB_HOST_PACKAGES,
  };
  const status = dpkgStatus();
  const closures = Object.fromEntries(Object.entries(sets).map(([k, v]) => [k, closure(v, status)])) as Record<Context, Set<string>>;
  const where: Record<Context, string> = {
    control: 'scripts/install-deps.sh',
    hypervisor: "playbooks/hypervisor.yaml's package tasks",
    balancer: "playbooks/balancer.yaml's package tasks",
    gateway: "playbooks/gateway.yaml's package tasks",
    container: 'BASE_PACKAGES (src/daemons/drivers/lxc-config.ts)',
    labhost: 'LAB_HOST_PACKAGES (src/lab/packages.ts)',
  };

  const refs = collectSystemRefs(root, roleModules());
  const problems: string[] = [];
  const checked = new Set<string>();
  const resolved = refs.flatMap((r) => {
    if (OPTIONAL.some((o) => o.file.test(r.file) && o.value.test(r.value))) return [];
    if (r.kind === 'path') return NOT_FROM_PACKAGES.some(([re]) => re.test(r.value)) ? [] : [{ ref: r, path: r.value }];
    if (NOT_DEBIAN[r.value] || PREREQUISITES[r.value]) return [];
    const path = findProgram(r.value);
    if (path) return [{ ref: r, path }];
    if (r.certain) problems.push(`${r.file}:${r.line}: runs ${r.value}, which no package installed here provides (${r.contexts.map((c) => where[c]).join(', ')} must install it)`);
    return [];
  });
  const owners = ownersOf([...new Set(resolved.map((x) => x.path))]);
  for (const { ref, path } of resolved) {
    const own = owners.get(path) ?? [];
    for (const context of ref.contexts) {
      const key = `${context}:${path}`;
      if (checked.has(key)) continue;
      checked.add(key);
      const label = ref.kind === 'program' ? `${ref.value} (${path})` : path;
      if (!own.length) {
        if (path.startsWith('/usr/local/') && ref.kind === 'program' && !ref.certain) continue; // a local tool matching a shell word
        problems.push(`${ref.file}:${ref.line}: ${label} is needed (${context}) but no installed package ships it: ${where[context]} must install the package that does`);
        continue;
      }
      if (own.some((p) => closures[context].has(p) || baseline(status.get(p)) || (context === 'control' && PREREQUISITE_PACKAGES.has(p)))) continue;
      const why = own.map((p) => (recommendedBy(p, sets[context], status) ? `${p} (only a Recommends of ${recommendedBy(p, sets[context], status)})` : p)).join(', ');
      problems.push(`${ref.file}:${ref.line}: ${label} is needed (${context}), shipped by ${why}, which is neither in ${where[context]} nor a hard dependency of one`);
    }
  }
  t.log(`${refs.length} references, ${new Set(resolved.map((r) => r.path)).size} system paths checked`);
  t.deepEqual(problems, []);
});

dpkgTest("the doctor's tables name the packages that really ship each file and program", (t) => {
  const problems: string[] = [];
  const programs = Object.entries(CONTROL_PROGRAMS).map(([name, pkg]) => ({ name, pkg, path: findProgram(name) }));
  const files = LXC_CONFIG_FILES.map((f) => ({ name: f, pkg: LXC_CONFIG_PACKAGE, path: lxcConfigFile(f) }));
  const owners = ownersOf([...programs, ...files].flatMap((p) => (p.path ? [p.path] : [])));
  for (const p of [...programs, ...files]) {
    if (!p.path) problems.push(`${p.name}: not found here (install ${p.pkg})`);
    else if (!(owners.get(p.path) ?? []).includes(p.pkg)) problems.push(`${p.name} (${p.path}): shipped by ${(owners.get(p.path) ?? []).join(', ') || 'no package'}, the table says ${p.pkg}`);
  }
  const status = dpkgStatus();
  const control = closure(deps, status);
  for (const p of [...programs, ...files]) if (!control.has(p.pkg) && !baseline(status.get(p.pkg))) problems.push(`${p.name}: ${p.pkg} is not installed by scripts/install-deps.sh (nor a hard dependency)`);
  t.deepEqual(problems, []);
});

function installDepsPackages(): string[] {
  const text = readFileSync(join(root, 'scripts/install-deps.sh'), 'utf8');
  const m = /^PACKAGES=\(([^)]*)\)/m.exec(text);
  if (!m) throw new Error('scripts/install-deps.sh: no PACKAGES=(...) list');
  return m[1]!.split(/\s+/).filter(Boolean);
}

/** The packages a role's play installs: its package tasks and those of the task files it imports. */
function rolePackages(playbook: string): string[] {
  const out: string[] = [];
  forEachTask(playbook, (task) => {
    const pkg = (task.package ?? task.apt) as { name?: string | string[] } | undefined;
    if (pkg?.name) out.push(...[pkg.name].flat());
  });
  return out;
}

/**
 * Packages every system we deal with has: Essential ones, and those of Priority required,
 * which every Debian install has and debootstrap --variant=minbase (containers, lab hosts) too.
 */
function baseline(s: PackageStatus | undefined): boolean {
  return !!s && (s.essential || s.priority === 'required');
}

/** Modules each role's play uses (imports included), by their canonical name. */
function roleModules(): Partial<Record<Context, Set<string>>> {
  const aliases: Record<string, string> = { apt: 'package', dnf: 'package', systemd: 'service', shell: 'command' };
  const keys = ['import_tasks', 'include_tasks', 'name', 'tags', 'when', 'notify', 'loop', 'become', 'register', 'ignore_errors', 'changed_when', 'vars', 'no_log'];
  const out: Partial<Record<Context, Set<string>>> = {};
  for (const role of ['hypervisor', 'balancer', 'gateway'] as const) {
    const set = new Set<string>();
    forEachTask(`${role}.yaml`, (task) => {
      for (const k of Object.keys(task)) if (!keys.includes(k)) set.add(aliases[k] ?? k);
    });
    out[role] = set;
  }
  return out;
}

function forEachTask(playbook: string, fn: (task: Record<string, unknown>) => void): void {
  const walk = (tasks: unknown[], dir: string) => {
    for (const task of tasks as Array<Record<string, unknown>>) {
      const imported = task.import_tasks ?? task.include_tasks;
      if (typeof imported === 'string') walk(parse(readFileSync(join(dir, imported), 'utf8')) as unknown[], dirname(join(dir, imported)));
      else fn(task);
    }
  };
  const dir = join(root, 'playbooks');
  for (const play of parse(readFileSync(join(dir, playbook), 'utf8')) as Array<{ tasks?: unknown[]; pre_tasks?: unknown[]; handlers?: unknown[] }>) {
    walk([...(play.pre_tasks ?? []), ...(play.tasks ?? []), ...(play.handlers ?? [])], dir);
  }
}

interface PackageStatus {
  essential: boolean;
  priority: string;
  /** each entry an or-group of package names */
  depends: string[][];
  recommends: string[];
  provides: string[];
}

function installed(pkg: string): boolean {
  return spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' }).stdout === 'install ok installed';
}

function dpkgStatus(): Map<string, PackageStatus> {
  const out = execFileSync('dpkg-query', ['-W', '-f=${Package}\t${Status}\t${Essential}\t${Priority}\t${Pre-Depends}\t${Depends}\t${Recommends}\t${Provides}\n'], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const names = (field: string) => field.split(',').map((s) => s.trim()).filter(Boolean);
  const bare = (s: string) => s.replace(/\(.*?\)/g, '').replace(/:\w+/g, '').trim();
  const map = new Map<string, PackageStatus>();
  for (const line of out.split('\n')) {
    const [name, st, essential, priority, pre, dep, rec, prov] = line.split('\t');
    if (!name || st !== 'install ok installed') continue;
    map.set(name, {
      essential: essential === 'yes',
      priority: priority ?? '',
      depends: [...names(pre ?? ''), ...names(dep ?? '')].map((g) => g.split('|').map(bare)),
      recommends: names(rec ?? '').flatMap((g) => g.split('|').map(bare)),
      provides: names(prov ?? '').map(bare),
    });
  }
  return map;
}

/**
 * The packages and their hard dependencies, recursively. An or-group counts through the
 * alternatives installed here (or the first, if none is); a virtual package through its
 * installed providers. Packages not installed here get theirs from `apt-cache depends`.
 */
function closure(start: readonly string[], status: Map<string, PackageStatus>): Set<string> {
  const providers = new Map<string, string[]>();
  for (const [name, s] of status) for (const v of s.provides) providers.set(v, [...(providers.get(v) ?? []), name]);
  const seen = new Set<string>();
  const queue = [...start];
  const notHere: string[] = [];
  while (queue.length) {
    const p = queue.pop()!;
    if (seen.has(p)) continue;
    seen.add(p);
    const s = status.get(p);
    if (!s) {
      if (providers.has(p)) queue.push(...providers.get(p)!);
      else notHere.push(p);
      continue;
    }
    for (const group of s.depends) {
      const present = group.filter((a) => status.has(a) || providers.has(a));
      queue.push(...(present.length ? present : group.slice(0, 1)));
    }
  }
  if (notHere.length) {
    const r = spawnSync('apt-cache', ['depends', '--recurse', '--no-recommends', '--no-suggests', '--no-conflicts', '--no-breaks', '--no-replaces', '--no-enhances', ...notHere], { encoding: 'utf8', maxBuffer: 64 << 20 });
    for (const line of r.stdout.split('\n')) if (/^\S/.test(line)) seen.add(line.replace(/^<|>$/g, '').trim());
  }
  return seen;
}

function recommendedBy(pkg: string, start: readonly string[], status: Map<string, PackageStatus>): string | undefined {
  return [...closure(start, status)].find((p) => status.get(p)?.recommends.includes(pkg));
}

/** Where a program is found by name, in the system's directories (not $PATH: npm puts node_modules/.bin first). */
function findProgram(name: string): string | undefined {
  return SYSTEM_BIN_DIRS.map((d) => join(d, name)).find((p) => existsSync(p));
}

/**
 * Owners of each path by `dpkg-query -S`, also under its merged-/usr twin (/usr/bin/busybox is
 * shipped as /bin/busybox) and, for a symlink such as /usr/bin/awk, of the file it leads to.
 */
function ownersOf(paths: string[]): Map<string, string[]> {
  const twin = (p: string) => (/^\/usr\/(s?bin|lib|lib64)\//.test(p) ? p.slice(4) : /^\/(s?bin|lib|lib64)\//.test(p) ? `/usr${p}` : undefined);
  const real = (p: string) => {
    try {
      const r = realpathSync(p);
      return r === p ? undefined : r;
    } catch {
      return undefined;
    }
  };
  const names = (p: string) => [p, twin(p), real(p), real(p) && twin(real(p)!)].filter((x): x is string => !!x);
  const queries = [...new Set(paths.flatMap(names))];
  const r = spawnSync('dpkg-query', ['-S', ...queries], { encoding: 'utf8', maxBuffer: 64 << 20 });
  const byPath = new Map<string, string[]>();
  for (const line of r.stdout.split('\n')) {
    if (!line || line.startsWith('diversion ')) continue;
    const i = line.lastIndexOf(': ');
    if (i < 0) continue;
    const pkgs = line.slice(0, i).split(',').map((s) => s.trim().replace(/:.*$/, ''));
    const path = line.slice(i + 2);
    byPath.set(path, [...(byPath.get(path) ?? []), ...pkgs]);
  }
  return new Map(paths.map((p) => [p, [...new Set(names(p).flatMap((n) => byPath.get(n) ?? []))]]));
}
