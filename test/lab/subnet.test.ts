import test from 'ava';
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Runner } from '../../src/common/exec.js';
import { bridgeName } from '../../src/lab/layout.js';
import { releaseSubnet, reserveSubnet } from '../../src/lab/subnet.js';

async function tempRoot(t: import('ava').ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'lab-subnets-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/**
 * `ip -4 -o addr show` printing only the given addresses: the choice of subnet is then
 * independent of the labs that other test files have up at the same moment.
 */
function ipShowing(addresses: string[]): Runner {
  return async (file, args) => ({
    command: [file, ...args].join(' '),
    exitCode: 0,
    signal: null,
    stdout: ['1: lo    inet 127.0.0.1/8 scope host lo', ...addresses.map((a, i) => `${90 + i}: if${i}    inet ${a} scope global if${i}`)].join('\n') + '\n',
    stderr: '',
    durationMs: 0,
    timedOut: false,
    failed: false,
  });
}

test('labs reserving at the same moment all get different subnets', async (t) => {
  const root = await tempRoot(t);
  // many names, so that some start at the same /24 (their hashes collide on the third octet)
  const names = Array.from({ length: 40 }, (_, i) => `lab${i}`);
  // as createLab does: the lab dir exists before its subnet is reserved
  await Promise.all(names.map((name) => mkdir(join(root, name))));
  const subnets = await Promise.all(names.map((name) => reserveSubnet({ labName: name, labDir: join(root, name), reservationDir: join(root, '.subnets'), runner: run })));
  t.is(new Set(subnets.map((s) => s.cidr)).size, names.length);
  for (const s of subnets) t.regex(s.cidr, /^10\.236\.\d+\.0\/24$/);
  t.is((await readdir(join(root, '.subnets'))).length, names.length);
  await releaseSubnet(join(root, '.subnets'), 'lab3');
  t.is((await readdir(join(root, '.subnets'))).length, names.length - 1);
});

test('a subnet overlapping an address on this machine is skipped', async (t) => {
  const root = await tempRoot(t);
  const first = createHash('sha256').update('busy').digest()[0]!;
  // the first /24 the lab would try holds an interface address, the second a single /32 host
  const runner = ipShowing([`10.236.${first}.77/24`, `10.236.${(first + 1) % 256}.5/32`]);
  const s = await reserveSubnet({ labName: 'busy', labDir: join(root, 'busy'), reservationDir: join(root, '.subnets'), runner });
  t.is(s.base, `10.236.${(first + 2) % 256}`);
  t.is(s.gateway, `10.236.${(first + 2) % 256}.1`);
});

test('a reservation whose lab dir is gone is taken over; a live one is not', async (t) => {
  const root = await tempRoot(t);
  const dir = join(root, '.subnets');
  const first = createHash('sha256').update('newcomer').digest()[0]!;
  const a = await reserveSubnet({ labName: 'live', labDir: root, reservationDir: dir, runner: ipShowing([]) });
  // a stale reservation on the subnet 'newcomer' tries first
  await writeFile(join(dir, `10.236.${first}`), `dead\n${join(root, 'no-such-lab')}\n`);
  const b = await reserveSubnet({ labName: 'newcomer', labDir: join(root, 'newcomer'), reservationDir: dir, runner: ipShowing([]) });
  if (a.base === `10.236.${first}`) t.not(b.base, a.base);
  else t.is(b.base, `10.236.${first}`);
});

test('bridge names fit the 15-byte interface name limit and differ per lab', (t) => {
  const names = ['a', 'lab', 't12345-1-abcd', 'x'.repeat(40)];
  const bridges = names.map(bridgeName);
  for (const b of bridges) t.true(b.length <= 15, b);
  t.is(new Set(bridges).size, names.length);
});

test('a /16 on this machine that covers the whole lab range leaves no subnet, with a clear error', async (t) => {
  const root = await tempRoot(t);
  await t.throwsAsync(reserveSubnet({ labName: 'full', labDir: root, reservationDir: join(root, '.subnets'), runner: ipShowing(['10.236.0.1/16']) }), {
    message: /no free \/24 left in 10\.236\.0\.0\/16 for lab full/,
  });
});
