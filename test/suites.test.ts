/**
 * The split of the test files into unit and heavy (test/heavy.ts, scripts/test-suite.ts) stays
 * true by itself: every test file is in exactly one suite, every heavy entry names a file that
 * exists and says why, and no unit test uses what makes a test heavy, in its own code or in
 * the test modules it imports (transitively). A new file that makes a bridge or a lab, or runs
 * the tools that change this machine, fails here until test/heavy.ts lists it.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { ROOT, matches, suites, testFiles } from '../scripts/test-suite.js';
import { HEAVY } from './heavy.js';

/** Test modules that make or change root resources of this machine. */
const HEAVY_MODULES: Readonly<Record<string, string>> = {
  'test/helpers/bridge.ts': 'a test bridge',
  'test/helpers/lab.ts': 'a lab',
  'test/helpers/sandbox.ts': 'a deployed lab',
  'test/helpers/spoof.ts': 'forged frames on a bridge',
  'test/helpers/subids.ts': 'edits /etc/subuid and /etc/subgid',
  'test/helpers/cgroups.ts': "removes the LXC driver's cgroups",
  'test/shell/gateway-fixture.ts': 'sshd, Unix users, a hypervisor on LXC',
  'test/provision/ansible-compare/cases/accounts.ts': 'accounts of this machine',
};

/** What in a test file's own code makes it heavy (helpers are judged by the modules above). */
const HEAVY_CODE: ReadonlyArray<[RegExp, string]> = [
  [/\bcreateTestBridge\(/, 'a test bridge'],
  [/['"`](lxc-(start|stop|create|destroy|attach|execute)|losetup|useradd|userdel|groupadd|groupdel|unshare|umount|mount)['"`]\s*,\s*\[/, 'runs a tool that changes this machine (LXC, loop devices, mounts, accounts)'],
  [/['"`]netns['"`]/, 'a network namespace'],
];

function localImports(file: string): string[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const out: string[] = [];
  for (const m of text.matchAll(/^import\s+(type\s+)?[^;]*?from\s+'(\.[^']+)';/gm)) {
    if (m[1]) continue; // types only: nothing runs
    const target = relative(ROOT, join(ROOT, dirname(file), m[2]!.replace(/\.js$/, '.ts'))).split('\\').join('/');
    if (target.startsWith('test/')) out.push(target);
  }
  return out;
}

/** Why `file` is heavy, from its code and the test modules it imports; empty when it is not. */
function heavySigns(file: string, seen = new Set<string>()): string[] {
  if (seen.has(file)) return [];
  seen.add(file);
  const signs: string[] = [];
  if (HEAVY_MODULES[file]) signs.push(`${file}: ${HEAVY_MODULES[file]}`);
  if (file.endsWith('.test.ts')) {
    const code = readFileSync(join(ROOT, file), 'utf8');
    for (const [re, why] of HEAVY_CODE) if (re.test(code)) signs.push(`${file}: ${why}`);
  }
  for (const dep of localImports(file)) signs.push(...heavySigns(dep, seen));
  return signs;
}

test('every test file is in exactly one suite, unit or heavy', (t) => {
  const { unit, heavy } = suites();
  const all = testFiles();
  t.deepEqual([...unit, ...heavy].sort(), all);
  t.is(unit.filter((f) => heavy.includes(f)).length, 0);
  t.true(unit.includes('test/suites.test.ts'));
  t.true(unit.length > heavy.length, `${unit.length} unit, ${heavy.length} heavy`);
});

test('every heavy entry names at least one test file and says why', (t) => {
  const all = testFiles();
  for (const [pattern, why] of Object.entries(HEAVY)) {
    t.true(all.some((f) => matches(pattern, f)), `test/heavy.ts: ${pattern} matches no test file (renamed or removed?)`);
    t.true(why.length > 10, `test/heavy.ts: ${pattern} needs a reason`);
  }
});

test('no unit test uses a bridge, a lab, LXC, mounts, namespaces or accounts of this machine', (t) => {
  const offenders = suites()
    .unit.map((f) => ({ f, signs: heavySigns(f) }))
    .filter((o) => o.signs.length)
    .map((o) => `${o.f} (${o.signs.join('; ')}): list it in test/heavy.ts`);
  t.deepEqual(offenders, []);
});

test('the signs find what they are for: each heavy module and code sign is used by a heavy test', (t) => {
  const { heavy } = suites();
  const found = heavy.flatMap((f) => heavySigns(f));
  for (const [module] of Object.entries(HEAVY_MODULES)) t.true(found.some((s) => s.startsWith(`${module}:`)), `${module} is used by no heavy test`);
  for (const [, why] of HEAVY_CODE) t.true(found.some((s) => s.endsWith(why)), `no heavy test shows "${why}"`);
});

test('a pattern matches within one folder only', (t) => {
  t.true(matches('test/e2e/*.test.ts', 'test/e2e/sandbox.test.ts'));
  t.false(matches('test/e2e/*.test.ts', 'test/e2e/more/sandbox.test.ts'));
  t.false(matches('test/lab/lab.test.ts', 'test/lab/labXtest.ts'));
});
