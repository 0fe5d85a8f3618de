import { readdir, readFile, stat } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { errorMessage } from '../../common/errors.js';
import { InventoryError } from './errors.js';
import { parseInventory } from './parse.js';
import type { Inventory, VarsFile } from './types.js';

const EXTENSIONS = ['', '.yml', '.yaml', '.json'];

/**
 * Read an inventory file and the group_vars/ and host_vars/ directories beside it, the way
 * Ansible's host_group_vars plugin finds them: for a name, the first of `<name>`, `<name>.yml`,
 * `<name>.yaml`, `<name>.json` that exists; if it is a directory, every file in it (and in
 * subdirectories) with one of those extensions or none, in lexical order, hidden files and
 * `~` backups skipped.
 */
export async function loadInventory(path: string, options: { homeDir?: string } = {}): Promise<Inventory> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new InventoryError(`cannot read the inventory: ${errorMessage(err)}`, { source: path });
  }
  const baseDir = dirname(path);
  const [groupVars, hostVars] = await Promise.all([
    readVarsDir(join(baseDir, 'group_vars')),
    readVarsDir(join(baseDir, 'host_vars')),
  ]);
  return parseInventory(text, { source: path, baseDir, groupVars, hostVars, ...(options.homeDir ? { homeDir: options.homeDir } : {}) });
}

/** name -> its files, for every name present in a group_vars/ or host_vars/ directory. */
async function readVarsDir(dir: string): Promise<Record<string, VarsFile[]>> {
  const entries = await readdir(dir).catch(() => [] as string[]);
  const names = new Set<string>();
  for (const entry of entries) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue;
    const ext = EXTENSIONS.find((e) => e !== '' && entry.endsWith(e));
    names.add(ext ? entry.slice(0, -ext.length) : entry);
  }
  const out: Record<string, VarsFile[]> = {};
  for (const name of [...names].sort()) {
    for (const ext of EXTENSIONS) {
      const candidate = join(dir, name + ext);
      const info = await stat(candidate).catch(() => undefined);
      if (!info) continue;
      const paths = info.isDirectory() ? await filesIn(candidate) : [candidate];
      out[name] = await Promise.all(paths.map(async (p) => ({ source: p, text: await readFile(p, 'utf8') })));
      break;
    }
  }
  return out;
}

async function filesIn(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of (await readdir(dir)).sort()) {
    if (entry.startsWith('.') || entry.endsWith('~')) continue;
    const full = join(dir, entry);
    const ext = extname(entry);
    const info = await stat(full);
    if (info.isDirectory() && !ext) out.push(...(await filesIn(full)));
    else if (info.isFile() && EXTENSIONS.includes(ext)) out.push(full);
  }
  return out;
}

