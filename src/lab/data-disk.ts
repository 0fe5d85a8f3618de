import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked, type Runner } from '../common/exec.js';

/**
 * The data disk of a lab host that runs containers: a sparse file on this machine formatted
 * ext4 and loop-mounted at <lab>/data/<host>, which the host gets bind-mounted at
 * /var/lib/vzsandbox/containers (./lxc-config.ts). What the host's containers write (their
 * disk volumes are files on it) stays inside the file's size, so a lab can never fill this
 * machine's disk; `lab down` unmounts it and the file goes with the lab's directory.
 */
export const DATA_DISK_GIB = 32;

export function dataDiskPaths(labDir: string, host: string): { image: string; mountPoint: string } {
  return { image: join(labDir, 'data', `${host}.ext4`), mountPoint: join(labDir, 'data', host) };
}

export async function makeDataDisk(labDir: string, host: string, runner: Runner, sizeGiB = DATA_DISK_GIB): Promise<string> {
  const { image, mountPoint } = dataDiskPaths(labDir, host);
  await mkdir(mountPoint, { recursive: true, mode: 0o700 });
  await runChecked('truncate', ['-s', `${sizeGiB}G`, image], {}, runner);
  await runChecked('mkfs.ext4', ['-q', '-F', '-m', '0', '-E', 'lazy_itable_init=1,nodiscard', '-L', `vzsb-${host}`, image], { timeoutMs: 120_000 }, runner);
  // discard: space freed inside (a reset's removed volume) is given back to this machine.
  await runChecked('mount', ['-o', 'loop,discard', image, mountPoint], {}, runner);
  return mountPoint;
}

/** Unmount every data disk of a lab (lazily if still busy); nothing mounted is fine. */
export async function removeDataDisks(labDir: string, runner: Runner): Promise<void> {
  const data = join(labDir, 'data');
  if (!existsSync(data)) return;
  const mounts = await readFile('/proc/self/mounts', 'utf8');
  const targets = mounts
    .split('\n')
    .map((line) => line.split(' ')[1]?.replace(/\\(\d{3})/g, (_, o: string) => String.fromCharCode(parseInt(o, 8))))
    .filter((target): target is string => target !== undefined && target.startsWith(`${data}/`))
    // deepest first: a host's mounts inside its data disk go before the disk
    .sort((a, b) => b.length - a.length);
  for (const target of targets) {
    const plain = await runner('umount', [target]);
    if (plain.failed) await runner('umount', ['-l', target]);
  }
  await rm(data, { recursive: true, force: true });
}
