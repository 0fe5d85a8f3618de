import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

export type UserState =
  | { exists: false }
  | {
      exists: true;
      uid: number;
      gid: number;
      /** Name of the primary group. */
      group: string;
      /** Supplementary groups (without the primary one), sorted. */
      groups: string[];
      comment: string;
      home: string;
      shell: string;
      /** The password field starts with "!" (only that first character is read, never the hash). */
      locked: boolean;
    };

export type GroupState = { exists: false } | { exists: true; gid: number; members: string[] };

/** One account from getent passwd, its groups from id, whether its password is locked. */
export const userFact: FactModule<UserState> = {
  name: 'user',
  command: (name) => {
    const n = quote(name);
    return `( if e=$(getent passwd ${n} </dev/null); then printf 'passwd=%s\\nprimary=%s\\ngroups=%s\\nshadow=%s\\n' "$e" "$(id -gn ${n} 2>/dev/null)" "$(id -Gn ${n} 2>/dev/null)" "$(getent shadow ${n} 2>/dev/null </dev/null | cut -d: -f2 | cut -c1)"; else echo absent; fi )`;
  },
  parse(stdout) {
    const kv = keyValues(stdout);
    const passwd = kv.get('passwd');
    if (!passwd) return { exists: false };
    const [, , uid = '', gid = '', comment = '', home = '', shell = ''] = passwd.split(':');
    const group = kv.get('primary') ?? '';
    const groups = (kv.get('groups') ?? '').split(/\s+/).filter((g) => g && g !== group).sort();
    return { exists: true, uid: Number(uid), gid: Number(gid), group, groups, comment, home, shell, locked: kv.get('shadow') === '!' };
  },
};

/** One group from getent group. */
export const groupFact: FactModule<GroupState> = {
  name: 'group',
  command: (name) => `getent group ${quote(name)} </dev/null || echo absent`,
  parse(stdout) {
    const line = stdout.trim().split('\n')[0] ?? '';
    const parts = line.split(':');
    if (parts.length < 4) return { exists: false };
    return { exists: true, gid: Number(parts[2]), members: (parts[3] ?? '').split(',').filter(Boolean) };
  },
};

/** `key=value` lines; the value runs to the end of its line. */
export function keyValues(stdout: string): Map<string, string> {
  const kv = new Map<string, string>();
  for (const line of stdout.split('\n')) {
    const i = line.indexOf('=');
    if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1));
  }
  return kv;
}
