import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { VzsbError } from '../../common/errors.js';

/**
 * Unprivileged containers need root to own their id block in /etc/subuid and /etc/subgid:
 * LXC maps ids through newuidmap/newgidmap when they are installed, and those refuse ids
 * not granted there (with a message naming neither file). Checked at prepare so the daemon
 * says what is missing. Without newuidmap LXC writes the maps itself, as root may.
 */
export async function checkSubIds(block: { start: number; count: number }, files = { subuid: '/etc/subuid', subgid: '/etc/subgid', newuidmap: '/usr/bin/newuidmap' }): Promise<void> {
  if (!existsSync(files.newuidmap)) return;
  for (const file of [files.subuid, files.subgid]) {
    const text = await readFile(file, 'utf8').catch(() => '');
    if (!covers(grantedToRoot(text), block)) {
      throw new VzsbError(
        'E_INVALID',
        `${file} does not grant root the id block ${block.start}-${block.start + block.count - 1} that unprivileged containers use: add "root:${block.start}:${block.count}" (the hypervisor playbook does)`,
      );
    }
  }
}

/** root's ranges (by name or uid 0) in a subuid/subgid file. */
export function grantedToRoot(text: string): { start: number; count: number }[] {
  const out: { start: number; count: number }[] = [];
  for (const line of text.split('\n')) {
    const [who, start, count] = line.trim().split(':');
    if ((who === 'root' || who === '0') && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '')) out.push({ start: Number(start), count: Number(count) });
  }
  return out;
}

/** Whether the ranges together cover the block without a gap. */
export function covers(ranges: { start: number; count: number }[], block: { start: number; count: number }): boolean {
  let reached = block.start;
  const end = block.start + block.count;
  for (const r of [...ranges].sort((a, b) => a.start - b.start)) {
    if (r.start > reached) break;
    reached = Math.max(reached, r.start + r.count);
    if (reached >= end) return true;
  }
  return reached >= end;
}
