import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTemplating, renderValue } from '../../src/provision/templating.js';

test('renders without HTML escaping, with helpers', (t) => {
  const tpl = createTemplating();
  t.is(tpl.render('a={{a}} <{{join list ","}}> {{json obj}}', { a: '"&<', list: [1, 2], obj: { k: 1 } }, 'x'), 'a="&< <1,2> {"k":1}');
});

test('a missing variable names the template and line', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-tpl-'));
  writeFileSync(join(dir, 'c.hbs'), 'line1\nport = {{port}}\n');
  const tpl = createTemplating();
  await t.throwsAsync(tpl.renderFile(join(dir, 'c.hbs'), {}, 'c.hbs'), { message: 'c.hbs:2: variable "port" is not defined' });
});

test('a syntax error names the template and line', (t) => {
  t.throws(() => createTemplating().render('a\n{{#if x}}\n', { x: 1 }, 'broken.hbs'), { message: /^broken\.hbs:\d+: / });
});

test('a lone expression keeps the type; nested values are rendered', (t) => {
  const tpl = createTemplating();
  const vars = { pkgs: ['a', 'b'], port: 22, name: 'x', ref: '{{name}}-y' };
  t.deepEqual(renderValue(tpl, { name: '{{ pkgs }}', port: '{{port}}', s: 'p={{port}}', ref: '{{ref}}' }, vars, 't'), { name: ['a', 'b'], port: 22, s: 'p=22', ref: 'x-y' });
  t.throws(() => renderValue(tpl, '{{ nope }}', vars, 'task'), { message: 'task: variable "nope" is not defined' });
});

test('cidrhost', (t) => {
  const tpl = createTemplating();
  t.is(tpl.render('{{cidrhost net 1}} {{cidrhost net 250}}', { net: '10.100.3.0/24' }, 'x'), '10.100.3.1 10.100.3.250');
  t.throws(() => tpl.render('{{cidrhost net 300}}', { net: '10.100.3.0/24' }, 'x'), { message: /outside 10\.100\.3\.0\/24/ });
});

test('add', (t) => {
  const tpl = createTemplating();
  t.is(tpl.render('{{add drain 30}} {{add "5" 1 2}}', { drain: 3600 }, 'x'), '3630 8');
  t.throws(() => tpl.render('{{add drain 30}}', { drain: 'soon' }, 'x'), { message: /add: expected numbers/ });
});

test('concat and hostaddrs', (t) => {
  const tpl = createTemplating({ secret: (n) => `S(${n})` });
  const vars = { groups: { balancers: ['b1', 'b2'] }, hostvars: { b1: { ansible_host: '10.0.0.1' }, b2: { ansible_host: '10.0.0.2' } }, inventory_hostname: 'hyp1' };
  t.is(tpl.render('{{join (hostaddrs "balancers") ", "}} {{secret (concat "lease-" inventory_hostname)}}', vars, 'x'), '10.0.0.1, 10.0.0.2 S(lease-hyp1)');
  t.throws(() => tpl.render('{{hostaddrs "nope"}}', vars, 'x'), { message: /no group "nope"/ });
});

test('templated variables: rendered with the others, JSON results become lists', async (t) => {
  const { resolveTemplatedVars } = await import('../../src/provision/host-program.js');
  const tpl = createTemplating({ secret: (n) => `secret-${n}` });
  const vars = {
    groups: { balancers: ['b1'] },
    hostvars: { b1: { ansible_host: '10.0.0.5' } },
    port: 8760,
    urls: '{{json (hosturls "balancers" port)}}',
    token: '{{secret "lease"}}',
    greeting: 'hello {{name}}',
    name: '{{token}}!',
  };
  const out = resolveTemplatedVars(tpl, vars, 'play');
  t.deepEqual(out.urls, ['http://10.0.0.5:8760']);
  t.is(out.token, 'secret-lease');
  t.is(out.greeting, 'hello secret-lease!');
  t.throws(() => resolveTemplatedVars(tpl, { a: '{{nope}}' }, 'pb.yaml:1'), { message: /pb\.yaml:1: a: variable "nope" is not defined/ });
});
