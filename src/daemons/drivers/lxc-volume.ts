import { existsSync } from 'node:fs';
import { chmod, cp, mkdir, mkdtemp, rename, rm, rmdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import type { CommandResult, Runner } from '../../common/exec.js';

/**
 * Disk and inode quotas of LXC clones: each clone's overlay upper layer lives on a volume of
 * its own, a sparse file formatted ext4 with a fixed size and a fixed number of inodes and
 * loop-mounted over the clone's overlay directory (the parent of the upper and work dirs).
 *
 * Why a volume and not project quotas: this kernel has neither XFS quota support
 * (CONFIG_XFS_QUOTA) nor the quota format ext4 needs (CONFIG_QFMT_V2), so project quotas
 * cannot be enforced here; a filesystem of its own is enforced by any kernel. Overlayfs
 * reports its upper filesystem in statfs, so `df` and `df -i` inside show the volume.
 * A full volume gives the writer ENOSPC and nobody else notices. A reset destroys the
 * clone and with it the file: the new clone gets a new, empty volume (about 40 ms).
 * See docs/drivers.md.
 */
export interface VolumeQuota {
  /** size of the volume in MiB */
  diskMiB: number;
  /** inodes at most (files, directories, links) */
  inodes: number;
}

/** The volume file, beside the clone's config (lxc-destroy removes it with the directory). */
export const VOLUME_FILE = 'vzsb-volume.ext4';

/**
 * The `-N` that gives at most `inodes` inodes: mke2fs rounds the count up to whole inode-table
 * blocks in every block group (4 KiB blocks of 256-byte inodes: multiples of 16 per group of
 * 128 MiB), so ask for the largest multiple below the limit.
 */
export function inodeArgument(quota: VolumeQuota): number {
  const groups = Math.max(1, Math.ceil(quota.diskMiB / 128));
  const perGroup = Math.max(16, Math.floor(quota.inodes / groups / 16) * 16);
  return perGroup * groups;
}

/**
 * Attach the volume to a loop device and mount it. `mount -o loop` first (one process; the
 * device is autoclear, gone at unmount). Where /dev is not devtmpfs (a privileged LXC system
 * container, the lab's hypervisor hosts) the node of the free device is missing and that
 * fails: then the device is found and attached explicitly, its node made, and `losetup -d` on
 * the mounted device only marks it autoclear.
 */
const MOUNT_VOLUME = String.raw`img=$1 mnt=$2
opts=noinit_itable,discard
mount -t ext4 -o "loop,$opts" "$img" "$mnt" 2>/dev/null && exit 0
dev= last=
for try in 1 2 3 4 5 6 7 8; do
  free=$(losetup -f) || exit 1
  [ -b "$free" ] || mknod -m 0660 "$free" b 7 "$(printf %s "$free" | tr -cd 0-9)" 2>/dev/null || true
  if last=$(losetup -f --show "$img" 2>&1); then dev=$last; break; fi
done
[ -n "$dev" ] || { echo "attaching $img to a loop device: $last" >&2; exit 1; }
mount -t ext4 -o "$opts" "$dev" "$mnt" || { losetup -d "$dev"; exit 1; }
losetup -d "$dev"
`;

/**
 * A clone's volume is a sparse copy of an empty one formatted once (`cp --sparse=always`
 * copies the few hundred KiB of metadata, not the size): mke2fs, which fsyncs what it wrote,
 * stays off the reset path.
 */
const COPY_AND_MOUNT = String.raw`cp --sparse=always "$3" "$1" || exit 1
${MOUNT_VOLUME}`;

/** The directory the volume is mounted on: the parent of the clone's upper (and work) dir. */
export function volumeMountPoint(upperDir: string): string {
  return dirname(upperDir);
}

/** True when something is mounted on `path` (its device differs from its parent's). */
export async function isMountPoint(path: string): Promise<boolean> {
  const [here, parent] = await Promise.all([stat(path).catch(() => undefined), stat(dirname(path)).catch(() => undefined)]);
  return here !== undefined && parent !== undefined && here.dev !== parent.dev;
}

/**
 * The empty volume clones copy, one per size and inode count, in `dir` (the base's directory):
 * made once, complete or absent (built under a temporary name, then renamed). It holds the
 * empty upper dir `delta`.
 */
export async function volumeTemplate(runner: Runner, dir: string, quota: VolumeQuota): Promise<string> {
  const inodes = inodeArgument(quota);
  const template = join(dir, `vzsb-volume-${quota.diskMiB}m-${inodes}i.ext4`);
  if (existsSync(template)) return template;
  const staging = await mkdtemp(join(dir, '.vzsb-volume-'));
  try {
    await mkdir(join(staging, 'root', 'delta'), { recursive: true, mode: 0o755 });
    await chmod(join(staging, 'root'), 0o755);
    const image = join(staging, 'volume.ext4');
    must(
      await runner('mkfs.ext4', ['-q', '-F', '-N', String(inodes), '-m', '0', '-O', '^has_journal,^resize_inode', '-E', 'lazy_itable_init=1,nodiscard', '-L', 'vzsb-upper', '-d', join(staging, 'root'), image, `${quota.diskMiB}M`], { timeoutMs: 120_000 }),
      `formatting the disk volume template ${template}`,
    );
    await rename(image, template);
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return template;
}

/**
 * A new, empty volume for a clone that has never run, mounted over its overlay directory
 * (which then holds an empty `delta`, the upper dir; LXC makes the work dir at start).
 */
export async function makeVolume(runner: Runner, cloneDir: string, upperDir: string, quota: VolumeQuota, templateDir: string): Promise<void> {
  const mnt = volumeMountPoint(upperDir);
  if (upperDir !== join(mnt, 'delta')) throw new VzsbError('E_DRIVER_RUNTIME', `clone upper dir ${upperDir}: expected <overlay dir>/delta`);
  if (await isMountPoint(mnt)) throw new VzsbError('E_DRIVER_RUNTIME', `${mnt} already has a volume mounted`);
  const template = await volumeTemplate(runner, templateDir, quota);
  // What lxc-copy wrote into the upper layer (the clone's /etc/hostname) moves onto the volume.
  const aside = join(cloneDir, '.vzsb-upper-of-lxc-copy');
  await rm(aside, { recursive: true, force: true });
  const wrote = existsSync(upperDir);
  if (wrote) await rename(upperDir, aside);
  must(await runner('sh', ['-c', COPY_AND_MOUNT, 'vzsb-volume', join(cloneDir, VOLUME_FILE), mnt, template], { timeoutMs: 60_000 }), `making the disk volume of ${cloneDir}`);
  if (wrote) {
    await cp(aside, upperDir, { recursive: true, force: true, verbatimSymlinks: true, preserveTimestamps: true });
    await rm(aside, { recursive: true, force: true });
  }
  // lost+found only takes an inode of the student's.
  await rmdir(join(mnt, 'lost+found')).catch(() => undefined);
}

/** Mounted after a host reboot; a clone without a volume file (made without quota) is left alone. */
export async function ensureVolumeMounted(runner: Runner, cloneDir: string, upperDir: string): Promise<void> {
  const img = join(cloneDir, VOLUME_FILE);
  const mnt = volumeMountPoint(upperDir);
  if (!existsSync(img) || (await isMountPoint(mnt))) return;
  must(await runner('sh', ['-c', MOUNT_VOLUME, 'vzsb-volume', img, mnt], { timeoutMs: 60_000 }), `mounting the disk volume of ${cloneDir}`);
}

/**
 * Unmount before lxc-destroy removes the directory (else it would delete the volume's files
 * one by one). A stopped container holds nothing on it; if something still does, detach
 * lazily: the loop device goes once the last user does, and the file's space with it.
 */
export async function unmountVolume(runner: Runner, upperDir: string): Promise<void> {
  const mnt = volumeMountPoint(upperDir);
  if (!(await isMountPoint(mnt))) return;
  const plain = await runner('umount', [mnt], { timeoutMs: 30_000 });
  if (plain.failed) must(await runner('umount', ['-l', mnt], { timeoutMs: 30_000 }), `unmounting the disk volume ${mnt}`);
}

/** What the host needs for volumes, checked at prepare: the tools and loop devices. */
export async function checkVolumeSupport(runner: Runner, devRoot = '/dev'): Promise<void> {
  if (!existsSync(join(devRoot, 'loop-control'))) {
    throw new VzsbError('E_DRIVER_RUNTIME', `disk quotas need loop devices: ${join(devRoot, 'loop-control')} is missing (kernel loop module; in a container, the device)`);
  }
  const tools = await runner('sh', ['-c', 'command -v mkfs.ext4 && command -v losetup'], { timeoutMs: 10_000 });
  if (tools.failed) throw new VzsbError('E_DRIVER_RUNTIME', 'disk quotas need mkfs.ext4 (e2fsprogs) and losetup (mount) on the host');
}

function must(result: CommandResult, doing: string): void {
  if (!result.failed) return;
  const tail = result.stderr.trim().split('\n').slice(-3).join('\n');
  throw new VzsbError('E_DRIVER_RUNTIME', `${doing} failed (${result.timedOut ? 'timed out' : `exit ${result.exitCode}`}): ${tail || result.command}`, { details: `${result.command}\n${result.stderr}` });
}
