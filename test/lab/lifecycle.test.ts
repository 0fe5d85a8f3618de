import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { run } from '../../src/common/exec.js';
import { LAB_CREATE_TIMEOUT_MS } from '../helpers/lab.js';
import { VzsbError } from '../../src/common/errors.js';
import { NFT, firewallTable } from '../../src/lab/firewall.js';
import { createLab, destroyLab, DEFAULT_LAB_ROOT, labLayout, readLab } from '../../src/lab/index.js';

// Labs made here are owned by this process, so a killed run is pruned by the next one.
const env = { ownerPid: process.pid };
const uniqueName = (tag: string) => `t${process.pid}-${tag}-${randomBytes(2).toString('hex')}`;

async function assertGone(t: import('ava').ExecutionContext, name: string) {
  const layout = labLayout(name);
  const link = await run('ip', ['link', 'show', 'dev', layout.bridge]);
  t.true(link.failed, `bridge ${layout.bridge} still exists`);
  const ls = await run('lxc-ls', ['-P', layout.lxcPath, '-1']);
  t.is(ls.stdout.trim(), '', 'containers left in the lab lxc path');
  t.false(existsSync(layout.dir), `${layout.dir} still exists`);
  const reservations = existsSync(`${DEFAULT_LAB_ROOT}/.subnets`) ? await readdir(`${DEFAULT_LAB_ROOT}/.subnets`) : [];
  for (const r of reservations) t.false((await run('grep', ['-qx', name, `${DEFAULT_LAB_ROOT}/.subnets/${r}`])).exitCode === 0, `subnet reservation ${r} left`);
  const veths = await run('ip', ['-o', 'link', 'show', 'master', layout.bridge]);
  t.is(veths.stdout.trim(), '');
  t.true((await run(NFT, ['list', 'table', 'inet', firewallTable(layout.bridge)])).failed, 'nftables table left');
}

test('destroyLab removes containers, bridge, subnet reservation and state dir', async (t) => {
  t.timeout(LAB_CREATE_TIMEOUT_MS);
  const name = uniqueName('d');
  t.teardown(() => destroyLab(name, env));
  const lab = await createLab({ name, hosts: 2 }, env);
  const layout = labLayout(name);
  t.false((await run('ip', ['link', 'show', 'dev', lab.bridge])).failed);
  t.regex((await run(NFT, ['list', 'table', 'inet', firewallTable(lab.bridge)])).stdout, /iifname "vzlab[0-9a-f]{8}" oifname != "vzlab[0-9a-f]{8}" drop/);
  t.deepEqual((await run('lxc-ls', ['-P', layout.lxcPath, '-1'])).stdout.trim().split('\n').sort(), ['base', 'host1', 'host2']);
  t.is((await readLab(name))?.hosts.length, 2);
  await destroyLab(name, env);
  await assertGone(t, name);
  t.is(await readLab(name), undefined);
  // destroying what is gone is not an error
  await t.notThrowsAsync(destroyLab(name, env));
});

test('a host that does not come up is named with its console log, and nothing is left', async (t) => {
  t.timeout(LAB_CREATE_TIMEOUT_MS);
  const name = uniqueName('f');
  t.teardown(() => destroyLab(name, env));
  // far too short for any sshd to answer: the readiness wait gives up on the first host it checks
  const err = await t.throwsAsync(createLab({ name, hosts: [{ name: 'slowpoke' }], readyTimeoutSec: 0.001 }, env), { instanceOf: VzsbError });
  t.is(err?.code, 'E_LAB_NOT_READY');
  t.regex(err?.message ?? '', new RegExp(`host slowpoke \\(10\\.236\\.\\d+\\.11:22\\) did not answer`));
  t.regex(err?.message ?? '', /last lines of its console log/);
  await assertGone(t, name);
});

test('a second lab of the same name is refused and the first is untouched', async (t) => {
  t.timeout(LAB_CREATE_TIMEOUT_MS);
  const name = uniqueName('x');
  t.teardown(() => destroyLab(name, env));
  const lab = await createLab({ name, hosts: 1, init: 'script' }, env);
  const err = await t.throwsAsync(createLab({ name, hosts: 1 }, env), { instanceOf: VzsbError });
  t.is(err?.code, 'E_LAB_EXISTS');
  t.false((await run('ip', ['link', 'show', 'dev', lab.bridge])).failed);
  t.true(existsSync(lab.knownHostsFile));
});

test('bad options name the bad field', async (t) => {
  await t.throwsAsync(createLab({ name: 'Bad_Name', hosts: 1 }, env), { message: /lab options: name: /, code: 'E_INVALID' } as never);
  await t.throwsAsync(createLab({ name: uniqueName('o'), hosts: 0 }, env), { message: /hosts: / });
  await t.throwsAsync(createLab({ name: uniqueName('o'), hosts: [{ name: 'a' }, { name: 'a' }] }, env), { message: /hosts\[1\]\.name: duplicate host name "a"/ });
  await t.throwsAsync(createLab({ name: uniqueName('o'), hosts: [{ name: 'a', init: 'upstart' as never }] }, env), { message: /hosts\[0\]\.init: / });
  await t.throwsAsync(destroyLab('../etc'), { message: /lab name/ });
});
