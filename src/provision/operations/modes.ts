import { z } from 'zod';
import { normalizeMode } from '../facts/file.js';

/**
 * File modes as Ansible takes them: octal ("0644", 0o644 from YAML's 0644) or symbolic
 * ("u+w", "u=rwx,g=rx,o="), the symbolic ones applied to the mode the path has (or gets when
 * created), the way Ansible's module_utils does it, with the umask 022 both use.
 */
const SYMBOLIC = /^[ugoa]*[-+=][rwxXstugo]*([-+=][rwxXstugo]*)*(,[ugoa]*[-+=][rwxXstugo]*([-+=][rwxXstugo]*)*)*$/;

export const modeSchema = z
  .union([
    z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode like "0644"'),
    z.string().regex(SYMBOLIC, 'a symbolic mode like "u=rw,g=r,o="'),
    z.number().int().min(0).max(0o7777),
  ])
  .transform((m) => (typeof m === 'number' ? normalizeMode(m) : /^0?[0-7]{3,4}$/.test(m) ? normalizeMode(m) : m));

export const isSymbolic = (mode: string) => !/^[0-7]{4}$/.test(mode);

const UMASK = 0o022;
const PERM_BITS = 0o7777;

function permsFor(user: 'u' | 'g' | 'o', perms: string, useUmask: boolean, prev: number, isDir: boolean): number {
  const rev = UMASK ^ PERM_BITS;
  const applyX = isDir || (prev & 0o111) > 0;
  const bit = (b: number) => (useUmask ? rev & b : b);
  const table = {
    u: { r: bit(0o400), w: bit(0o200), x: bit(0o100), s: 0o4000, t: 0, X: applyX ? 0o100 : 0, u: prev & 0o700, g: (prev & 0o070) << 3, o: (prev & 0o007) << 6 },
    g: { r: bit(0o040), w: bit(0o020), x: bit(0o010), s: 0o2000, t: 0, X: applyX ? 0o010 : 0, u: (prev & 0o700) >> 3, g: prev & 0o070, o: (prev & 0o007) << 3 },
    o: { r: bit(0o004), w: bit(0o002), x: bit(0o001), s: 0, t: 0o1000, X: applyX ? 0o001 : 0, u: (prev & 0o700) >> 6, g: (prev & 0o070) >> 3, o: prev & 0o007 },
  }[user] as Record<string, number>;
  let mode = 0;
  for (const p of perms) mode |= table[p] ?? 0;
  return mode;
}

/** The octal mode a symbolic mode gives a path whose mode is now `current` (4 octal digits). */
export function applySymbolicMode(current: string, symbolic: string, isDir: boolean): string {
  let mode = Number.parseInt(current, 8);
  for (const clause of symbolic.split(',')) {
    const parts = clause.split(/[-+=]/);
    const ops = clause.match(/[-+=]/g) ?? [];
    let users = parts.shift()!;
    const useUmask = users === '';
    if (users === '' || users === 'a') users = 'ugo';
    parts.forEach((perms, i) => {
      for (const user of users as Iterable<'u' | 'g' | 'o'>) {
        const apply = permsFor(user, perms, useUmask, mode, isDir);
        const op = ops[i];
        if (op === '=') {
          const mask = { u: 0o4700, g: 0o2070, o: 0o1007 }[user];
          mode = (mode & (mask ^ PERM_BITS)) | apply;
        } else if (op === '+') mode |= apply;
        else mode -= mode & apply;
      }
    });
  }
  return normalizeMode(mode);
}

/** The wanted mode in octal, given the path's current (or creation) mode. */
export function resolveMode(want: string | undefined, current: string, isDir: boolean): string | undefined {
  if (want === undefined) return undefined;
  return isSymbolic(want) ? applySymbolicMode(current, want, isDir) : want;
}
