import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

export type FileState =
  | { type: 'absent' }
  | { type: 'file'; mode: string; owner: string; group: string; size: number; sha256: string; uid?: number; gid?: number; inode?: number; links?: number }
  | { type: 'directory'; mode: string; owner: string; group: string; uid?: number; gid?: number }
  | { type: 'link'; target: string; owner?: string; group?: string; uid?: number; gid?: number }
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
    return `if [ -L ${p} ]; then printf 'link %s\\n' "$(readlink ${p})"; stat -c '%U %G %u %g' ${p}; elif [ -d ${p} ]; then stat -c 'directory %a %U %G %u %g' ${p}; elif [ -f ${p} ]; then stat -c 'file %a %U %G %s %u %g %i %h' ${p}; sha256sum < ${p} | cut -c1-64; elif [ -e ${p} ]; then echo other; else echo absent; fi`;
  },
  parse(stdout) {
    const [first = '', second = ''] = stdout.split('\n');
    const parts = first.trim().split(' ');
    switch (parts[0]) {
      case 'link': {
        const [owner, group, uid, gid] = second.trim().split(' ');
        return { type: 'link', target: first.slice(5).trim(), ...(owner && group ? { owner, group, ...ids(uid, gid) } : {}) };
      }
      case 'directory':
        return { type: 'directory', mode: normalizeMode(parts[1] ?? ''), owner: parts[2] ?? '', group: parts[3] ?? '', ...ids(parts[4], parts[5]) };
      case 'file':
        return {
          type: 'file',
          mode: normalizeMode(parts[1] ?? ''),
          owner: parts[2] ?? '',
          group: parts[3] ?? '',
          size: Number(parts[4] ?? 0),
          sha256: second.trim(),
          ...ids(parts[5], parts[6]),
          ...(parts[7] && parts[8] ? { inode: Number(parts[7]), links: Number(parts[8]) } : {}),
        };
      case 'other':
        return { type: 'other' };
      default:
        return { type: 'absent' };
    }
  },
};

/** Numeric owner and group, so that `owner: 0` compares equal to root. */
function ids(uid: string | undefined, gid: string | undefined): { uid?: number; gid?: number } {
  return uid !== undefined && gid !== undefined && /^\d+$/.test(uid) && /^\d+$/.test(gid) ? { uid: Number(uid), gid: Number(gid) } : {};
}

/** A file's whole content, as bytes (line edits work on bytes, as Ansible's do). Absent files read as null. */
export const contentFact: FactModule<Buffer | null> = {
  name: 'content',
  command: (path) => `if [ -f ${quote(path)} ]; then echo present; base64 -w0 < ${quote(path)}; else echo absent; fi`,
  parse: (stdout) => parsePresentBase64(stdout),
};

/** "present" and base64 bytes on the next line, or "absent" (null). */
export function parsePresentBase64(stdout: string): Buffer | null {
  const nl = stdout.indexOf('\n');
  const head = nl < 0 ? stdout.trim() : stdout.slice(0, nl).trim();
  if (head !== 'present') return null;
  // Empty content prints no base64 at all: the record is the bare "present" line.
  if (nl < 0) return Buffer.alloc(0);
  return Buffer.from(stdout.slice(nl + 1).trim(), 'base64');
}

/**
 * Bytes as a JS string of code units 0-255 (latin1), so that line edits keep every byte, and
 * text from a playbook in the same form (its UTF-8 bytes).
 */
export const bytesText = (b: Buffer) => b.toString('latin1');
export const textBytes = (s: string) => Buffer.from(s, 'utf8').toString('latin1');
