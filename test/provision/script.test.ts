import test from 'ava';
import { run } from '../../src/common/exec.js';
import { applyScript, factsScript, parseApplyRecords, parseRecords } from '../../src/provision/script.js';

// The wire protocol, run by a real sh.
test('facts script: one record per fact, robust to output without newlines', async (t) => {
  const script = factsScript('N1', [{ fact: 'exists', arg: '/' }, { fact: 'exists', arg: '/nonexistent path' }, { fact: 'file', arg: '/etc/hostname' }]);
  const r = await run('sh', ['-s'], { input: script });
  const records = parseRecords(r.stdout, 'N1');
  t.is(records.get('0'), 'yes');
  t.is(records.get('1'), 'no');
  t.regex(records.get('2') ?? '', /^file \d+ \w+ \w+ \d+ \d+ \d+ \d+ \d+\n[0-9a-f]{64}$/);
  t.true(records.has('os') && records.has('pending') && records.has('end'));
});

test('apply script: stops at the first failure, reports exit codes and output, puts files atomically', async (t) => {
  const { mkdtempSync, readFileSync, statSync, existsSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/vzsb-apply-`);
  const script = applyScript('N2', [
    { id: 0, commands: [{ kind: 'put', path: `${dir}/f`, content: Buffer.from('x\n'.repeat(1000)), mode: '0600' }], changedWhen: undefined, notify: [], ignoreErrors: false },
    { id: 1, commands: [{ kind: 'shell', script: 'echo out; echo err >&2' }], changedWhen: { stdoutContains: 'nothing' }, notify: [], ignoreErrors: false },
    { id: 2, commands: [{ kind: 'shell', script: 'false\necho not reached' }], changedWhen: undefined, notify: [], ignoreErrors: true },
    { id: 3, commands: [{ kind: 'shell', script: 'exit 7' }], changedWhen: undefined, notify: [], ignoreErrors: false },
    { id: 4, commands: [{ kind: 'shell', script: `touch ${dir}/never` }], changedWhen: undefined, notify: [], ignoreErrors: false },
  ]);
  const r = await run('sh', ['-s'], { input: script });
  const { records, complete } = parseApplyRecords(r.stdout, 'N2');
  t.false(complete);
  t.deepEqual(records.map((x) => [x.id, x.exitCode, x.changed]), [[0, 0, true], [1, 0, false], [2, 1, true], [3, 7, true]]);
  t.is(records[1]!.stdout, 'out\n');
  t.is(records[1]!.stderr, 'err\n');
  t.is(records[2]!.stdout, '', 'set -e stops a step at its first failing command');
  t.is(readFileSync(`${dir}/f`, 'utf8').length, 2000);
  t.is(statSync(`${dir}/f`).mode & 0o777, 0o600);
  t.false(existsSync(`${dir}/never`));
});

test('a command cannot forge a record', async (t) => {
  const script = applyScript('N3', [{ id: 0, commands: [{ kind: 'shell', script: "printf '\\n@@N3 5 0 1  \\n'" }], changedWhen: undefined, notify: [], ignoreErrors: false }]);
  const r = await run('sh', ['-s'], { input: script });
  const { records, complete } = parseApplyRecords(r.stdout, 'N3');
  t.true(complete);
  t.deepEqual(records.map((x) => x.id), [0]);
});

test('put with validate: a refused file leaves the old one in place', async (t) => {
  const { mkdtempSync, readFileSync, writeFileSync, readdirSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const dir = mkdtempSync(`${tmpdir()}/vzsb-validate-`);
  writeFileSync(`${dir}/conf`, 'good\n');
  const put = (content: string) =>
    applyScript('N4', [{ id: 0, commands: [{ kind: 'put', path: `${dir}/conf`, content: Buffer.from(content), validate: 'grep -q good %s' }], changedWhen: undefined, notify: [], ignoreErrors: false }]);
  const refused = parseApplyRecords((await run('sh', ['-s'], { input: put('bad\n') })).stdout, 'N4');
  t.is(refused.records[0]!.exitCode, 1);
  t.regex(refused.records[0]!.stderr, /validate refused the new .*conf: grep -q good %s/);
  t.is(readFileSync(`${dir}/conf`, 'utf8'), 'good\n');
  t.deepEqual(readdirSync(dir), ['conf'], 'no temporary file left');
  const accepted = parseApplyRecords((await run('sh', ['-s'], { input: put('still good\n') })).stdout, 'N4');
  t.is(accepted.records[0]!.exitCode, 0);
  t.is(readFileSync(`${dir}/conf`, 'utf8'), 'still good\n');
});

test('content fact: an empty file reads as empty, not as the word "present"', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const { tmpdir } = await import('node:os');
  const { factModules } = await import('../../src/provision/facts/index.js');
  const dir = mkdtempSync(`${tmpdir()}/vzsb-content-`);
  writeFileSync(`${dir}/empty`, '');
  writeFileSync(`${dir}/one`, 'present\n');
  const refs = ['empty', 'one', 'missing'].map((f) => ({ fact: 'content', arg: `${dir}/${f}` }));
  const r = await run('sh', ['-s'], { input: factsScript('N3', refs) });
  const records = parseRecords(r.stdout, 'N3');
  const content = factModules.get('content')!;
  t.deepEqual(refs.map((ref, i) => content.parse(records.get(String(i)) ?? '', ref.arg)), [Buffer.alloc(0), Buffer.from('present\n'), null]);
});
