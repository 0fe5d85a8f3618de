import { readdir, rmdir } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * Remove a parent cgroup that a test's LXC driver made (and its ".monitor" twin) in every
 * hierarchy, once its containers are gone: empty directories only, deepest first. What
 * still holds a task stays (and is reported by the kernel as EBUSY, ignored here).
 */
export async function removeCgroupTree(name: string, cgroupRoot = '/sys/fs/cgroup'): Promise<void> {
  const roots = [cgroupRoot, ...(await readdir(cgroupRoot, { withFileTypes: true }).catch(() => [])).filter((e) => e.isDirectory()).map((e) => join(cgroupRoot, e.name))];
  for (const root of roots) {
    for (const dir of [join(root, name), join(root, `${name}.monitor`)]) await removeEmptyTree(dir);
  }
}

async function removeEmptyTree(dir: string): Promise<void> {
  const entries = await readdir(dir, { withFileTypes: true }).catch(() => undefined);
  if (!entries) return;
  for (const e of entries) if (e.isDirectory()) await removeEmptyTree(join(dir, e.name));
  await rmdir(dir).catch(() => undefined);
}
