import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import type { CgroupVersion, LxcParentCgroup } from './lxc-config.js';

/**
 * The parent cgroup of all student containers, made by the driver at prepare(): every
 * container's cgroup (`<parent>/<id>`, see containerCgroupDirs) sits below it, so its limits
 * hold for all of them together, and no container can reach it (each one's cgroup namespace
 * starts two levels further down).
 */
export interface CgroupWrite {
  /** a file below the cgroup root */
  path: string;
  value: string;
}

export interface ParentCgroupPlan {
  version: CgroupVersion;
  /** directories to make below the cgroup root, parents first */
  dirs: string[];
  writes: CgroupWrite[];
}

/**
 * What to make and write, from what the host has: cgroup v1 puts memory and pids limits in
 * their controllers' hierarchies (cpuset needs its cpus and mems filled before any child can
 * hold a task); v2 has one directory, whose controllers must be enabled from the root down.
 */
export function parentCgroupPlan(parent: LxcParentCgroup, version: CgroupVersion, host: { memTotalBytes: number; cpus: string; mems: string }): ParentCgroupPlan {
  const memory = parent.memoryReserveMiB > 0 ? Math.max(host.memTotalBytes - parent.memoryReserveMiB * 1024 * 1024, 64 * 1024 * 1024) : undefined;
  const parts = parent.name.split('/');
  const chain = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  if (version === 1) {
    const dirs = ['memory', 'pids', 'cpuset'].flatMap((c) => chain.map((p) => `${c}/${p}`));
    const writes: CgroupWrite[] = [];
    for (const p of chain) writes.push({ path: `cpuset/${p}/cpuset.cpus`, value: host.cpus }, { path: `cpuset/${p}/cpuset.mems`, value: host.mems });
    writes.push({ path: `memory/${parent.name}/memory.limit_in_bytes`, value: memory === undefined ? '-1' : String(memory) });
    writes.push({ path: `pids/${parent.name}/pids.max`, value: parent.pidsMax > 0 ? String(parent.pidsMax) : 'max' });
    return { version, dirs, writes };
  }
  const enable = '+memory +pids +cpu +cpuset';
  const writes: CgroupWrite[] = [{ path: 'cgroup.subtree_control', value: enable }];
  for (const p of chain) writes.push({ path: `${p}/cgroup.subtree_control`, value: enable });
  writes.push({ path: `${parent.name}/memory.max`, value: memory === undefined ? 'max' : String(memory) });
  writes.push({ path: `${parent.name}/pids.max`, value: parent.pidsMax > 0 ? String(parent.pidsMax) : 'max' });
  return { version, dirs: chain, writes };
}

/** The host facts parentCgroupPlan needs, read from /proc and the root cpuset. */
export async function readHostFacts(cgroupRoot: string, version: CgroupVersion, procRoot = '/proc'): Promise<{ memTotalBytes: number; cpus: string; mems: string }> {
  const meminfo = await readFile(join(procRoot, 'meminfo'), 'utf8');
  const kib = Number(/^MemTotal:\s+(\d+) kB/m.exec(meminfo)?.[1] ?? NaN);
  if (!Number.isFinite(kib)) throw new VzsbError('E_DRIVER_RUNTIME', 'cannot read MemTotal from /proc/meminfo');
  const cpusetDir = version === 1 ? join(cgroupRoot, 'cpuset') : cgroupRoot;
  const read = async (name: string) => (await readFile(join(cpusetDir, name), 'utf8').catch(() => '')).trim();
  return { memTotalBytes: kib * 1024, cpus: (await read(version === 1 ? 'cpuset.cpus' : 'cpuset.cpus.effective')) || '0', mems: (await read(version === 1 ? 'cpuset.mems' : 'cpuset.mems.effective')) || '0' };
}

/**
 * Make the parent and set its limits. A v2 controller that the host cannot delegate (not
 * in the root's cgroup.controllers) is left out rather than failing the start; a limit that
 * cannot be written fails it, with the file named.
 */
export async function applyParentCgroup(cgroupRoot: string, plan: ParentCgroupPlan): Promise<void> {
  for (const dir of plan.dirs) {
    // On v1, a hierarchy this host does not mount (say, no cpuset) is skipped.
    if (plan.version === 1 && !existsSync(join(cgroupRoot, dir.split('/')[0]!))) continue;
    await mkdir(join(cgroupRoot, dir), { recursive: true });
  }
  for (const { path, value } of plan.writes) {
    const file = join(cgroupRoot, path);
    if (!existsSync(file)) continue;
    if (path.endsWith('cgroup.subtree_control')) {
      const available = (await readFile(join(file, '..', 'cgroup.controllers'), 'utf8').catch(() => '')).split(/\s+/);
      for (const want of value.split(' ')) {
        if (available.includes(want.slice(1))) await writeFile(file, want).catch(() => undefined);
      }
      continue;
    }
    try {
      await writeFile(file, value);
    } catch (err) {
      throw new VzsbError('E_DRIVER_RUNTIME', `cannot set ${file} to ${value}: ${(err as Error).message}`);
    }
  }
}
