import test from 'ava';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { run } from '../../src/common/exec.js';
import { LAB_CREATE_TIMEOUT_MS } from '../helpers/lab.js';
import { destroyLab, readLab } from '../../src/lab/index.js';

const entry = join(import.meta.dirname, '../../src/cli/entry.ts');
const vzsb = (...args: string[]) => run('node', ['--import', 'tsx', entry, ...args], { timeoutMs: LAB_CREATE_TIMEOUT_MS });

test('vzsb lab up / show / list / down', async (t) => {
  t.timeout(LAB_CREATE_TIMEOUT_MS);
  const name = `t${process.pid}-cli-${randomBytes(2).toString('hex')}`;
  t.teardown(() => destroyLab(name));

  const up = await vzsb('lab', 'up', name, '--hosts', '2');
  t.is(up.exitCode, 0, up.stderr);
  t.regex(up.stdout, new RegExp(`^lab ${name} is up in \\d+\\.\\d\\d s: 2 hosts on vzlab[0-9a-f]{8} 10\\.236\\.\\d+\\.0/24$`, 'm'));
  const lab = await readLab(name);
  t.truthy(lab);
  const inventoryFile = join(lab!.dir, 'inventory.yaml');
  const inventory = parse(readFileSync(inventoryFile, 'utf8'));
  t.deepEqual(inventory.all.children.lab.hosts, {
    host1: { ansible_host: lab!.hosts[0]!.address, ansible_port: 22 },
    host2: { ansible_host: lab!.hosts[1]!.address, ansible_port: 22 },
  });
  t.is(inventory.all.vars.ansible_ssh_private_key_file, lab!.keyFile);
  t.true(inventory.all.vars.ansible_ssh_common_args.includes(`UserKnownHostsFile=${lab!.knownHostsFile}`));

  const show = await vzsb('lab', 'show', name);
  t.is(show.exitCode, 0, show.stderr);
  t.regex(show.stdout, new RegExp(`^host2 +${lab!.hosts[1]!.address.replace(/\./g, '\\.')}:22 +systemd +no +lab$`, 'm'));
  t.true((await vzsb('lab', 'list')).stdout.split('\n').includes(name));

  const again = await vzsb('lab', 'up', name);
  t.is(again.exitCode, 1);
  t.regex(again.stderr, /already exists/);

  const down = await vzsb('lab', 'down', name);
  t.is(down.exitCode, 0, down.stderr);
  t.regex(down.stdout, new RegExp(`^lab ${name} is gone`, 'm'));
  t.false(existsSync(lab!.dir));

  const missing = await vzsb('lab', 'show', name);
  t.is(missing.exitCode, 1);
  t.regex(missing.stderr, new RegExp(`no lab ${name}`));
});

test('vzsb lab rejects a bad name with the field named', async (t) => {
  const r = await vzsb('lab', 'up', 'Bad_Name');
  t.is(r.exitCode, 1);
  t.regex(r.stderr, /lab options: name: /);
});
