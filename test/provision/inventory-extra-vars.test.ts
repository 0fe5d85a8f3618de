import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseExtraVars } from '../../src/cli/extra-vars.js';
import { run } from '../../src/common/exec.js';

const bin = fileURLToPath(new URL('../../bin/vzsb.js', import.meta.url));

// [-e values, the variables, or the error message]
const cases: [string[], Record<string, unknown> | RegExp][] = [
  [['a=1 b="two words" c=\'x y\''], { a: '1', b: 'two words', c: 'x y' }],
  [['{"n": 1, "l": [1, 2], "s": "x"}'], { n: 1, l: [1, 2], s: 'x' }],
  [['{n: 1, yes: true}'], { n: 1, yes: true }],
  [['a=1', '{"a": 2, "b": 3}', 'b=4'], { a: 2, b: '4' }],
  [['empty='], { empty: '' }],
  [['{bad json'], /^-e "\{bad json": not valid YAML or JSON: /],
  [['[1,2]'], /^-e "\[1,2\]": expected a mapping of variable names to values, got a list$/],
  [['a'], /^-e "a": "a" is not key=value \(expected key=value pairs, a YAML\/JSON mapping or @file\)$/],
  [['x=1 y z=2 1bad=3'], /^-e "x=1 y z=2 1bad=3": "y" is not key=value; "1bad" is not a variable name /],
  [['a="open'], /unterminated " quote/],
  [['  '], /got nothing/],
  [['{"a": 1, "a": 2}'], /not valid YAML or JSON: Map keys must be unique/],
  [['./vars.yaml'], /prepend its name with @ \(-e @\.\/vars\.yaml\)/],
  [['@/nonexistent/vars.yaml'], /^-e "@\/nonexistent\/vars.yaml": cannot read \/nonexistent\/vars.yaml: ENOENT/],
];

for (const [args, expected] of cases) {
  test(`-e ${args.map((a) => JSON.stringify(a)).join(' -e ')}`, async (t) => {
    if (expected instanceof RegExp) await t.throwsAsync(parseExtraVars(args), { code: 'E_USAGE', message: expected } as never);
    else t.deepEqual(await parseExtraVars(args), expected);
  });
}

test('@file: a YAML mapping is read; a list or an empty file is an error naming the file', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-extra-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'ok.yaml'), 'shell_banner: Lab 3\nports: [22, 80]\n');
  await writeFile(join(dir, 'list.yaml'), '- a\n');
  await writeFile(join(dir, 'empty.yaml'), '# nothing\n');
  t.deepEqual(await parseExtraVars([`@${join(dir, 'ok.yaml')}`]), { shell_banner: 'Lab 3', ports: [22, 80] });
  await t.throwsAsync(parseExtraVars([`@${join(dir, 'list.yaml')}`]), { message: /list\.yaml: expected a mapping of variable names to values, got a list/ });
  await t.throwsAsync(parseExtraVars([`@${join(dir, 'empty.yaml')}`]), { message: /empty\.yaml: expected a mapping of variable names to values, got null/ });
});

test('vzsb deploy -e with bad JSON names the error and exits 1 before touching any host', async (t) => {
  const r = await run(process.execPath, [bin, 'deploy', 'inventory.yaml', '-e', '{bad json'], { timeoutMs: 60_000 });
  t.is(r.exitCode, 1, r.stderr);
  t.regex(r.stderr, /^vzsb: -e "\{bad json": not valid YAML or JSON: /);
  t.notRegex(r.stderr, /is not a function/);
});
