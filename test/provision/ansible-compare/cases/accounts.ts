import { run } from '../../../../src/common/exec.js';
import type { CompareCase } from '../harness.js';

const sh = async (script: string) => (await run('sh', ['-c', script])).stdout;

/** The account as text without numbers the system picks: names, fields, shadow's lock and expiry. */
const observeUser = async (_d: string, u: string) =>
  sh(`getent passwd ${u} | cut -d: -f1,5-7; id -gn ${u} 2>/dev/null; id -Gn ${u} 2>/dev/null; getent shadow ${u} | cut -d: -f2,8 | sed 's/^\\([!*]*\\)[^:]*:/\\1<hash>:/'; getent group ${u} | cut -d: -f1,4`);
const observeGroup = async (_d: string, u: string) => sh(`getent group ${u} | cut -d: -f1,3,4`);
const removeUser = async (_d: string, u: string) => {
  await sh(`userdel -r ${u} 2>/dev/null; userdel ${u} 2>/dev/null; groupdel -f ${u} 2>/dev/null; true`);
};
const user = (c: Omit<CompareCase, 'observe' | 'cleanup'>): CompareCase => ({ ...c, observe: observeUser, cleanup: removeUser });
const group = (c: Omit<CompareCase, 'observe' | 'cleanup'>): CompareCase => ({ ...c, observe: observeGroup, cleanup: removeUser });

// Read from user's and group's integration targets (create, home, uid, password lock, expires,
// remove, groups, create_home, system; group gid and non_unique) and written as our own cases,
// with names unique to this run, removed afterwards.
export const userCases: CompareCase[] = [
  user({ name: 'create with a home in the sandbox', tasks: `- user: { name: $U, home: $D/home/$U, shell: /bin/sh }` }),
  user({ name: 'create without home', tasks: `- user: { name: $U, home: $D/h, create_home: false }` }),
  user({ name: 'a group named like the user exists: -N', setup: async (_d, u) => void (await sh(`groupadd ${u}`)), tasks: `- user: { name: $U, home: $D/h, create_home: false }` }),
  user({ name: 'existing user without its home gets one', setup: async (d, u) => void (await sh(`useradd -M -d ${d}/home ${u}`)), tasks: `- user: { name: $U }` }),
  user({ name: 'string uid and comma-separated groups', tasks: `- user: { name: $U, uid: '42917', groups: 'adm,mail', home: $D/h, create_home: false }` }),
  user({ name: 'groups with append', setup: async (d, u) => void (await sh(`useradd -M -d ${d}/h -G adm ${u}`)), tasks: `- user: { name: $U, groups: [mail], append: true }` }),
  user({ name: 'password and lock', tasks: `- user: { name: $U, home: $D/h, create_home: false, password: '$6$abc$QnUwhAobGw8eh3ScxTKQl8Gd7sSfuNn3xNZtHIuFNAKt1fSJ7Hb4KSmSbj9ioUIm1tcS8BTwBCz3I7v1SHHC0.' }\n- user: { name: $U, password_lock: true }` }),
  user({ name: 'expires', tasks: `- user: { name: $U, home: $D/h, create_home: false, expires: 1767225600 }` }),
  user({ name: 'comment and shell changed', setup: async (d, u) => void (await sh(`useradd -M -d ${d}/h ${u}`)), tasks: `- user: { name: $U, comment: 'A B', shell: /bin/bash }` }),
  user({ name: 'absent with remove', setup: async (d, u) => void (await sh(`useradd -m -d ${d}/home ${u}`)), tasks: `- user: { name: $U, state: absent, remove: true }` }),
  user({ name: 'generate_ssh_key', volatile: /\.ssh\/id_rsa(\.pub)?$/, tasks: `- user: { name: $U, home: $D/home, generate_ssh_key: true, ssh_key_comment: test }` }),
];

export const groupCases: CompareCase[] = [
  group({ name: 'create with gid', tasks: `- group: { name: $U, gid: 61931 }` }),
  group({ name: 'create with a string gid', tasks: `- group: { name: $U, gid: '61932' }` }),
  group({ name: 'gid changed', setup: async (_d, u) => void (await sh(`groupadd -g 61933 ${u}`)), tasks: `- group: { name: $U, gid: 61934 }` }),
  group({ name: 'non_unique gid', tasks: `- group: { name: $U, gid: 0, non_unique: true }` }),
  group({ name: 'system group', tasks: `- group: { name: $U, system: true }` }),
  group({ name: 'absent', setup: async (_d, u) => void (await sh(`groupadd -g 61935 ${u}`)), tasks: `- group: { name: $U, state: absent }` }),
];
