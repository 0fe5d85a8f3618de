import { quoteAll } from '../shell.js';
import type { FactModule } from '../types.js';

export interface PackageState {
  installed: boolean;
  version: string | null;
}

/** The fact argument for a set of package names: sorted, unique, space separated. */
export function packagesArg(names: readonly string[]): string {
  return [...new Set(names)].sort().join(' ');
}

function namesOf(arg: string): string[] {
  return arg.split(' ').filter(Boolean);
}

// '${...}' are dpkg-query's format fields, not shell expansions (single-quoted).
const DPKG_FORMAT = "'${Package}\\t${db:Status-Abbrev}\\t${Version}\\n'";
const RPM_FORMAT = "'%{NAME}\\tii \\t%{VERSION}-%{RELEASE}\\n'";

/**
 * Installed state and version of exactly the named packages, in one dpkg-query (or rpm) call.
 * Lines are `name<TAB>status<TAB>version`; a name without a line is not installed.
 */
export const packagesFact: FactModule<Record<string, PackageState>> = {
  name: 'packages',
  command: (arg) => {
    const names = quoteAll(namesOf(arg));
    return [
      `if command -v dpkg-query >/dev/null 2>&1; then dpkg-query -W -f=${DPKG_FORMAT} ${names} 2>/dev/null </dev/null;`,
      `elif command -v rpm >/dev/null 2>&1; then rpm -q --qf ${RPM_FORMAT} ${names} 2>/dev/null </dev/null | grep '\t';`,
      'fi; true',
    ].join(' ');
  },
  parse(stdout, arg) {
    const result: Record<string, PackageState> = {};
    for (const name of namesOf(arg)) result[name] = { installed: false, version: null };
    for (const line of stdout.split('\n')) {
      const [name, status, version] = line.split('\t');
      if (!name || status === undefined || !(name in result)) continue;
      // dpkg's abbreviated status: desired, current ("ii", "hi" on hold); "rc" = removed, config left.
      if (status[1] === 'i') result[name] = { installed: true, version: version?.trim() || null };
    }
    return result;
  },
};

/** The version the package manager would install now (apt-cache policy's Candidate), or null. */
export const packageCandidatesFact: FactModule<Record<string, string | null>> = {
  name: 'package_candidates',
  command: (arg) => {
    const names = quoteAll(namesOf(arg));
    return [
      `if command -v apt-cache >/dev/null 2>&1; then LC_ALL=C apt-cache policy ${names} 2>/dev/null </dev/null | awk '/^[^ ]/ { n = $1; sub(/:$/, "", n) } /^  Candidate:/ { print n "\\t" $2 }';`,
      `elif command -v dnf >/dev/null 2>&1; then dnf -q repoquery --latest-limit=1 --qf '%{name}\\t%{version}-%{release}\\n' ${names} 2>/dev/null </dev/null;`,
      `elif command -v repoquery >/dev/null 2>&1; then repoquery -q --qf '%{name}\\t%{version}-%{release}' ${names} 2>/dev/null </dev/null;`,
      'fi; true',
    ].join(' ');
  },
  parse(stdout, arg) {
    const result: Record<string, string | null> = {};
    for (const name of namesOf(arg)) result[name] = null;
    for (const line of stdout.split('\n')) {
      const [name, version] = line.split('\t');
      if (!name || !version || !(name in result)) continue;
      result[name] = version.trim() === '(none)' ? null : version.trim();
    }
    return result;
  },
};

/**
 * Seconds since the package lists were last refreshed (apt: the update-success stamp, else the
 * lists' mtime), or null when never (or not apt).
 */
export const packageCacheAgeFact: FactModule<number | null> = {
  name: 'package_cache_age',
  command: () =>
    '( t=$(stat -c %Y /var/lib/apt/periodic/update-success-stamp 2>/dev/null || stat -c %Y /var/lib/apt/lists 2>/dev/null); if [ -n "$t" ] && ls /var/lib/apt/lists/*_Packages* >/dev/null 2>&1; then echo "age=$(( $(date +%s) - t ))"; else echo age=none; fi )',
  parse(stdout) {
    const m = /age=(-?\d+)/.exec(stdout);
    return m ? Math.max(0, Number(m[1])) : null;
  },
};
