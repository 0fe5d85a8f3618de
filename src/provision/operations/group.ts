import { z } from 'zod';
import type { GroupState } from '../facts/users.js';
import { quote } from '../shell.js';
import type { FactRef, Operation } from '../types.js';
import { accountName, idSchema } from './user.js';

const args = z.strictObject({
  name: accountName,
  state: z.enum(['present', 'absent']).default('present'),
  gid: idSchema.optional(),
  /** With gid: allow a gid another group has (groupadd/groupmod -o). */
  non_unique: z.boolean().default(false),
  system: z.boolean().default(false),
});
export type GroupArgs = z.infer<typeof args>;

const groupRef = (name: string): FactRef => ({ fact: 'group', arg: name });

/** Ansible's `group`: a local group (groupadd/groupmod/groupdel). */
export const groupOperation: Operation<GroupArgs> = {
  name: 'group',
  args,
  facts: (a) => [groupRef(a.name)],
  plan(a, { facts }) {
    const current = facts.get<GroupState>(groupRef(a.name));
    const n = quote(a.name);
    if (a.state === 'absent') {
      if (!current.exists) return { commands: [], reason: `group ${a.name} does not exist` };
      return { commands: [{ kind: 'shell', script: `groupdel ${n}` }], reason: `remove group ${a.name}`, effects: [[groupRef(a.name), { exists: false }]] };
    }
    if (!current.exists) {
      const opts = [...(a.gid !== undefined ? [`-g ${a.gid}${a.non_unique ? ' -o' : ''}`] : []), ...(a.system ? ['-r'] : [])];
      return {
        commands: [{ kind: 'shell', script: ['groupadd', ...opts, n].join(' ') }],
        reason: `create group ${a.name}`,
        effects: [[groupRef(a.name), { exists: true, gid: a.gid ?? -1, members: [] } satisfies GroupState]],
      };
    }
    if (a.gid !== undefined && a.gid !== current.gid) {
      return {
        commands: [{ kind: 'shell', script: `groupmod -g ${a.gid}${a.non_unique ? ' -o' : ''} ${n}` }],
        reason: `group ${a.name}: gid ${current.gid} -> ${a.gid}`,
        effects: [[groupRef(a.name), { ...current, gid: a.gid }]],
      };
    }
    return { commands: [], reason: `group ${a.name} exists` };
  },
};
