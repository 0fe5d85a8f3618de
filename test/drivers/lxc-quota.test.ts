import test from 'ava';
import { chmod, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { VOLUME_FILE } from '../../src/daemons/drivers/lxc-volume.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';
import { grantRootSubIds } from '../helpers/subids.js';

// The disk and inode quota attacks of a hostile root in a container, at the deployed
// defaults (4096 MiB, 200,000 inodes), on real LXC. Unique to this file: bridge vzsbt50 /
// 10.231.50.0/24, containers "vzq50-N", own lxcPath, host ids from 400000000 (a block of 65536 per container slot).
const INDEX = 50;
const PREFIX = `vzq${INDEX}-`;
const IDMAP = { start: 400_000_000, count: 241 * 65536 };
const QUOTA = { diskMiB: 4096, inodes: 200_000 };
let bridge: TestBridge | undefined;
let lxcPath: string | undefined;
let driver: LxcDriver;
let releaseSubIds: (() => Promise<void>) | undefined;
const A = `${PREFIX}1`;
const B = `${PREFIX}2`;

test.serial.before(async () => {
  releaseSubIds = await grantRootSubIds(IDMAP.start, IDMAP.count);
  bridge = await createTestBridge(INDEX);
  lxcPath = await mkdtemp(join(tmpdir(), `vzsb-quota${INDEX}-`));
  await chmod(lxcPath, 0o711);
  driver = new LxcDriver({
    config: lxcConfigOn(bridge, { prefix: PREFIX, lxcPath, baseName: `vzq${INDEX}base`, limits: { pidsMax: 1024 }, idmap: IDMAP, quota: QUOTA }),
  });
  for (const c of await driver.list()) await driver.destroy(c.id);
  await driver.prepare();
  for (const id of [A, B]) {
    await driver.create(id);
    await driver.start(id);
  }
});

test.serial.after.always(async () => {
  if (driver) for (const c of await driver.list().catch(() => [])) await driver.destroy(c.id).catch(() => undefined);
  if (lxcPath) await rm(lxcPath, { recursive: true, force: true });
  await bridge?.remove();
  await releaseSubIds?.();
});

const sh = (id: string, script: string) => driver.exec(id, ['/bin/sh', '-c', script]);
const FULL = /No space left on device|Disk quota exceeded/;

test.serial('quota: df and df -i inside show the quota, not the host disk', async (t) => {
  const df = await sh(A, 'df -P -k / | tail -n 1; df -P -i / | tail -n 1');
  const [blocks, inodes] = df.stdout.trim().split('\n').map((line) => Number(line.trim().split(/\s+/)[1]));
  t.true(blocks! <= QUOTA.diskMiB * 1024 && blocks! > QUOTA.diskMiB * 1024 * 0.95, `df: ${df.stdout}`);
  t.true(inodes! <= QUOTA.inodes && inodes! > QUOTA.inodes * 0.95, `df -i: ${df.stdout}`);
  // lxc-copy wrote the clone's /etc/hostname into the upper layer before the volume came: still there.
  t.is((await sh(A, 'cat /etc/hostname')).stdout.trim(), A);
});

test.serial('quota: fallocate -l 6G fails inside; 3 GiB and ordinary files work', async (t) => {
  const big = await sh(A, 'fallocate -l 6G /root/fill');
  t.not(big.exitCode, 0);
  t.regex(big.stderr, FULL);
  // ext4 keeps what a failed fallocate did allocate: the attacker filled its own disk.
  t.is((await sh(A, 'rm /root/fill && df -P -k / | tail -n 1')).exitCode, 0);
  const ok = await sh(A, 'fallocate -l 3G /root/ordinary && dd if=/dev/urandom of=/root/data bs=1M count=16 status=none && sync && ls -s --block-size=M /root/ordinary');
  t.is(ok.exitCode, 0, ok.stderr);
  t.regex(ok.stdout, /^307[23]M /, "3 GiB, plus the blocks of its extent tree");
  await sh(A, 'rm -f /root/ordinary /root/data /root/fill');
});

test.serial('quota: 250,000 files cannot be made inside', async (t) => {
  const r = await sh(A, 'mkdir /root/many && cd /root/many || exit 9; seq 1 250000 | xargs touch 2>&1 | tail -n 1; ls | wc -l');
  t.regex(r.stdout, FULL, r.stderr);
  const made = Number(r.stdout.trim().split('\n').pop());
  t.true(made < QUOTA.inodes, `${made} files were made`);
  await sh(A, 'rm -rf /root/many');
});

test.serial('quota: a full container does not stop another container or the host from writing; a reset gives the space back', async (t) => {
  const fill = await sh(A, 'fallocate -l "$(df -P -k / | tail -n 1 | awk "{print \\$4}")K" /root/all; dd if=/dev/zero of=/root/more bs=1M count=8 2>&1; df -P -k / | tail -n 1');
  t.regex(fill.stdout, FULL, 'the container itself is full');
  t.regex(fill.stdout, /\s100%\s/);
  const other = await sh(B, 'dd if=/dev/zero of=/root/mine bs=1M count=64 status=none && sync && echo ok');
  t.is(other.stdout, 'ok\n', `the other container writes: ${other.stderr}`);
  const hostFile = join(lxcPath!, 'host-write');
  await writeFile(hostFile, Buffer.alloc(1 << 20));
  await rm(hostFile);
  // On the host the volume is a sparse file: it holds what was written, never more than the quota.
  const volume = await stat(join(lxcPath!, A, VOLUME_FILE));
  t.true(volume.blocks * 512 <= (QUOTA.diskMiB + 64) * 1024 * 1024, `volume allocates ${volume.blocks * 512} bytes`);

  await driver.destroy(A);
  t.false((await run('sh', ['-c', `grep -F ' ${join(lxcPath!, A)}/' /proc/self/mounts`])).exitCode === 0, 'no mount is left behind');
  await driver.create(A);
  await driver.start(A);
  const fresh = await sh(A, 'df -P -k / | tail -n 1; ls /root');
  const used = Number(fresh.stdout.trim().split('\n')[0]!.trim().split(/\s+/)[2]);
  t.true(used < 10 * 1024, `the new clone starts empty: ${fresh.stdout}`);
  t.notRegex(fresh.stdout, /all|more/);
});
