import { z } from 'zod';
import { packagesArg, type PackageState } from '../facts/packages.js';
import { quoteAll } from '../shell.js';
import type { ChangedWhen, Command, FactRef, Operation, OsFacts } from '../types.js';

// Debian and RPM package names.
const packageName = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9+._-]*$/, 'a package name');

const args = z
  .strictObject({
    name: z.union([packageName, z.array(packageName)]).optional(),
    state: z.enum(['present', 'absent', 'latest']).default('present'),
    /** Refresh the package lists first (apt-get update / dnf makecache). */
    update_cache: z.boolean().default(false),
    /** With update_cache: skip the refresh when the lists are younger than this many seconds. */
    cache_valid_time: z.number().int().min(0).optional(),
    /** state=absent: also remove configuration files (apt-get purge). */
    purge: z.boolean().default(false),
  })
  .superRefine((a, ctx) => {
    if (a.name === undefined && !a.update_cache) ctx.addIssue({ code: 'custom', path: ['name'], message: 'required unless update_cache is true' });
    if (a.cache_valid_time !== undefined && !a.update_cache) ctx.addIssue({ code: 'custom', path: ['cache_valid_time'], message: 'only meaningful with update_cache: true' });
  });
export type PackageArgs = z.infer<typeof args>;

function names(a: PackageArgs): string[] {
  return a.name === undefined ? [] : typeof a.name === 'string' ? [a.name] : [...new Set(a.name)];
}

const packagesRef = (list: string[]): FactRef => ({ fact: 'packages', arg: packagesArg(list) });
const candidatesRef = (list: string[]): FactRef => ({ fact: 'package_candidates', arg: packagesArg(list) });
const cacheAgeRef: FactRef = { fact: 'package_cache_age', arg: '' };

function tool(os: OsFacts): { install: string; remove: string; purge: string; refresh: string } {
  switch (os.packageManager) {
    case 'apt':
      return {
        install: 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends',
        remove: 'DEBIAN_FRONTEND=noninteractive apt-get remove -y',
        purge: 'DEBIAN_FRONTEND=noninteractive apt-get purge -y',
        // apt itself only writes this stamp from its periodic job; we write it so cache_valid_time can read it.
        refresh: 'apt-get update -q\nmkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp',
      };
    case 'dnf':
    case 'yum':
      return {
        install: `${os.packageManager} install -y`,
        remove: `${os.packageManager} remove -y`,
        purge: `${os.packageManager} remove -y`,
        refresh: `${os.packageManager} makecache -q`,
      };
    case 'none':
      throw new Error(`host ${os.hostname} has no supported package manager (apt, dnf or yum)`);
  }
}

/**
 * Ansible's `package`/`apt`: packages present, absent or at the candidate version. Facts: the
 * installed state of exactly the named packages (one dpkg-query/rpm call), the candidate
 * versions for state=latest, the lists' age for cache_valid_time.
 */
export const packageOperation: Operation<PackageArgs> = {
  name: 'package',
  args,
  facts(a) {
    const list = names(a);
    return [
      ...(list.length ? [packagesRef(list)] : []),
      ...(list.length && a.state === 'latest' ? [candidatesRef(list)] : []),
      ...(a.update_cache && a.cache_valid_time !== undefined ? [cacheAgeRef] : []),
    ];
  },
  plan(a, { facts }) {
    const list = names(a);
    const pm = tool(facts.os);
    const current = list.length ? facts.get<Record<string, PackageState>>(packagesRef(list)) : {};
    const candidates = a.state === 'latest' && list.length ? facts.get<Record<string, string | null>>(candidatesRef(list)) : {};
    let todo: string[];
    let after: Record<string, PackageState>;
    if (a.state === 'absent') {
      todo = list.filter((n) => current[n]?.installed);
      after = Object.fromEntries(list.map((n) => [n, { installed: false, version: null }]));
    } else if (a.state === 'present') {
      todo = list.filter((n) => !current[n]?.installed);
      after = Object.fromEntries(list.map((n) => [n, current[n]?.installed ? current[n]! : { installed: true, version: null }]));
    } else {
      todo = list.filter((n) => !current[n]?.installed || (candidates[n] != null && candidates[n] !== current[n]?.version));
      after = Object.fromEntries(list.map((n) => [n, { installed: true, version: candidates[n] ?? current[n]?.version ?? null }]));
    }

    // The lists are refreshed only when something is to be installed (or the task is only a
    // refresh, or state=latest: the candidates read were those of the stale lists).
    const wantsRefresh = a.update_cache && a.state !== 'absent' && (todo.length > 0 || list.length === 0 || a.state === 'latest');
    const age = a.update_cache && a.cache_valid_time !== undefined ? facts.get<number | null>(cacheAgeRef) : null;
    const fresh = a.cache_valid_time !== undefined && age !== null && age <= a.cache_valid_time;
    const commands: Command[] = [];
    const why: string[] = [];
    let changedWhen: ChangedWhen | undefined;
    if (wantsRefresh && !fresh) {
      commands.push({ kind: 'shell', script: pm.refresh });
      why.push(age === null ? 'refresh package lists' : `refresh package lists (${age}s old)`);
      if (a.state === 'latest' && todo.length === 0) {
        // Upgrade against the fresh lists; changed only if the package manager did something.
        todo = list;
        changedWhen = { stdoutNotContains: facts.os.packageManager === 'apt' ? '0 upgraded, 0 newly installed' : 'Nothing to do' };
      }
    }
    if (todo.length) {
      const verb = a.state === 'absent' ? (a.purge ? pm.purge : pm.remove) : pm.install;
      commands.push({ kind: 'shell', script: `${verb} ${quoteAll(todo)}` });
      why.push(`${a.state === 'absent' ? 'remove' : a.state === 'latest' ? 'install/upgrade' : 'install'} ${todo.join(' ')}`);
    }
    const effects: Array<[FactRef, unknown]> = [
      ...(list.length ? ([[packagesRef(list), after]] as Array<[FactRef, unknown]>) : []),
      ...(commands.length && a.update_cache && a.cache_valid_time !== undefined ? ([[cacheAgeRef, 0]] as Array<[FactRef, unknown]>) : []),
    ];
    if (!commands.length) {
      const reason =
        list.length === 0
          ? `package lists are ${age}s old (valid for ${a.cache_valid_time}s)`
          : a.state === 'absent'
            ? `not installed: ${list.join(' ')}`
            : a.state === 'latest'
              ? `at the candidate version: ${list.join(' ')}`
              : `installed: ${list.join(' ')}`;
      return { commands, reason, effects };
    }
    return { commands, reason: why.join('; '), effects, ...(changedWhen ? { changedWhen } : {}) };
  },
};
