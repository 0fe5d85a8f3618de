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
      /** The password field starts with "!". */
      locked: boolean;
      /** sha256 of the password field (the hash itself is never read into vzsb). */
      passwordDigest?: string;
      /** Account expiry in days since 1970 (shadow field 8), -1 when none. */
      expireDays?: number;
      homeExists?: boolean;
    };

export type GroupState = { exists: false } | { exists: true; gid: number; members: string[] };

/** One account from getent passwd, its groups from id, whether its password is locked. */
export const userFact: FactModule<UserState> = {
  name: 'user',
  command: (name) => {
    const n = quote(name);
    return [
      `( if e=$(getent passwd ${n} </dev/null); then s=$(getent shadow ${n} 2>/dev/null </dev/null);`,
      `printf 'passwd=%s\\nprimary=%s\\ngroups=%s\\nshadow=%s\\ndigest=%s\\nexpire=%s\\n' "$e" "$(id -gn ${n} 2>/dev/null)" "$(id -Gn ${n} 2>/dev/null)" "$(printf %s "$s" | cut -d: -f2 | cut -c1)" "$(printf %s "$s" | cut -d: -f2 | sha256sum | cut -c1-64)" "$(printf %s "$s" | cut -d: -f8)";`,
      `if [ -e "$(printf %s "$e" | cut -d: -f6)" ]; then echo home=yes; else echo home=no; fi; else echo absent; fi )`,
    ].join(' ');
  },
  parse(stdout) {
    const kv = keyValues(stdout);
    const passwd = kv.get('passwd');
    if (!passwd) return { exists: false };
    const [, , uid = '', gid = '', comment = '', home = '', shell = ''] = passwd.split(':');
    const group = kv.get('primary') ?? '';
    const groups = (kv.get('groups') ?? '').split(/\s+/).filter((g) => g && g !== group).sort();
    const expire = kv.get('expire');
    return {
      exists: true,
      uid: Number(uid),
      gid: Number(gid),
      group,
      groups,
      comment,
      home,
      shell,
      locked: kv.get('shadow') === '!',
      ...(kv.get('digest') ? { passwordDigest: kv.get('digest')! } : {}),
      expireDays: expire && /^-?\d+$/.test(expire) ? Number(expire) : -1,
      homeExists: kv.get('home') === 'yes',
    };
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
