import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

export type FileState =
  | { type: 'absent' }
  | { type: 'file'; mode: string; owner: string; group: string; size: number; sha256: string }
  | { type: 'directory'; mode: string; owner: string; group: string }
  | { type: 'link'; target: string }
  | { type: 'other' };

/** Normalizes "644" / "1777" to four octal digits. */
export function normalizeMode(mode: string | number): string {
  const s = typeof mode === 'number' ? mode.toString(8) : mode.replace(/^0o/, '');
  return s.padStart(4, '0');
}

/** Stat of one path: type, mode, owner, group, and the sha256 of a regular file's content. */
export const fileFact: FactModule<FileState> = {
  name: 'file',
  command: (path) => {
    const p = quote(path);
    return `if [ -L ${p} ]; then printf 'link %s\\n' "$(readlink ${p})"; elif [ -d ${p} ]; then stat -c 'directory %a %U %G' ${p}; elif [ -f ${p} ]; then stat -c 'file %a %U %G %s' ${p}; sha256sum < ${p} | cut -c1-64; elif [ -e ${p} ]; then echo other; else echo absent; fi`;
  },
  parse(stdout) {
    const [first = '', second = ''] = stdout.split('\n');
    const parts = first.trim().split(' ');
    switch (parts[0]) {
      case 'link':
        return { type: 'link', target: first.slice(5).trim() };
      case 'directory':
        return { type: 'directory', mode: normalizeMode(parts[1] ?? ''), owner: parts[2] ?? '', group: parts[3] ?? '' };
      case 'file':
        return {
          type: 'file',
          mode: normalizeMode(parts[1] ?? ''),
          owner: parts[2] ?? '',
          group: parts[3] ?? '',
          size: Number(parts[4] ?? 0),
          sha256: second.trim(),
        };
      case 'other':
        return { type: 'other' };
      default:
        return { type: 'absent' };
    }
  },
};

/** A file's whole content (for line edits and diffs). Absent files read as null. */
export const contentFact: FactModule<string | null> = {
  name: 'content',
  command: (path) => `if [ -f ${quote(path)} ]; then echo present; base64 -w0 < ${quote(path)}; else echo absent; fi`,
  parse(stdout) {
    const nl = stdout.indexOf('\n');
    const head = nl < 0 ? stdout.trim() : stdout.slice(0, nl).trim();
    if (head !== 'present') return null;
    // An empty file prints no base64 at all: the record is the bare "present" line.
    if (nl < 0) return '';
    return Buffer.from(stdout.slice(nl + 1).trim(), 'base64').toString('utf8');
  },
};
