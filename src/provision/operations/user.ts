import { z } from 'zod';
import type { UserState } from '../facts/users.js';
import { quote } from '../shell.js';
import type { FactRef, Operation } from '../types.js';
import { pathSchema } from './common.js';

/** Names useradd/groupadd accept on Debian and RHEL (a trailing $ for machine accounts). */
export const accountName = z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/, 'a user or group name like "vzsb" (lower case, up to 32 characters)');

const args = z.strictObject({
  name: accountName,
  state: z.enum(['present', 'absent']).default('present'),
  uid: z.number().int().min(0).optional(),
  /** Primary group (name); must exist. */
  group: accountName.optional(),
  /** Supplementary groups; with append: false (the default) exactly these. */
  groups: z.union([accountName, z.array(accountName)]).optional(),
  append: z.boolean().default(false),
  comment: z.string().refine((s) => !/[:\n]/.test(s), 'no ":" or newline').optional(),
  shell: pathSchema.optional(),
  home: pathSchema.optional(),
  /** Create the home directory (new users only), like useradd -m. */
  create_home: z.boolean().default(true),
  /** Move the contents when home changes (usermod -m). */
  move_home: z.boolean().default(false),
  system: z.boolean().default(false),
  /** Lock (true) or unlock (false) the password; unset leaves it alone. */
  password_lock: z.boolean().optional(),
  /** state=absent: also remove the home directory and mail spool (userdel -r). */
  remove: z.boolean().default(false),
});
export type UserArgs = z.infer<typeof args>;

const userRef = (name: string): FactRef => ({ fact: 'user', arg: name });

function groupList(a: UserArgs): string[] | undefined {
  return a.groups === undefined ? undefined : [...new Set(typeof a.groups === 'string' ? [a.groups] : a.groups)].sort();
}

/** Ansible's `user`: a local account (useradd/usermod/userdel), compared field by field. */
export const userOperation: Operation<UserArgs> = {
  name: 'user',
  args,
  facts: (a) => [userRef(a.name)],
  plan(a, { facts }) {
    const current = facts.get<UserState>(userRef(a.name));
    const n = quote(a.name);
    const groups = groupList(a);
    if (a.state === 'absent') {
      if (!current.exists) return { commands: [], reason: `user ${a.name} does not exist` };
      return {
        commands: [{ kind: 'shell', script: `userdel ${a.remove ? '-r ' : ''}${n}` }],
        reason: `remove user ${a.name}`,
        effects: [[userRef(a.name), { exists: false }]],
      };
    }
    if (!current.exists) {
      const opts: string[] = [];
      if (a.uid !== undefined) opts.push(`-u ${a.uid}`);
      if (a.group) opts.push(`-g ${quote(a.group)}`);
      if (groups?.length) opts.push(`-G ${quote(groups.join(','))}`);
      if (a.comment !== undefined) opts.push(`-c ${quote(a.comment)}`);
      if (a.home) opts.push(`-d ${quote(a.home)}`);
      if (a.shell) opts.push(`-s ${quote(a.shell)}`);
      if (a.system) opts.push('-r');
      opts.push(a.create_home ? '-m' : '-M');
      const script = [`useradd ${opts.join(' ')} ${n}`, ...(a.password_lock === false ? [`usermod -U ${n}`] : [])].join('\n');
      return {
        commands: [{ kind: 'shell', script }],
        reason: `create user ${a.name}`,
        effects: [
          [
            userRef(a.name),
            {
              exists: true,
              uid: a.uid ?? -1,
              gid: -1,
              group: a.group ?? a.name,
              groups: groups ?? [],
              comment: a.comment ?? '',
              home: a.home ?? `/home/${a.name}`,
              shell: a.shell ?? '/bin/sh',
              // useradd leaves the password locked ("!") until one is set.
              locked: a.password_lock ?? true,
            } satisfies UserState,
          ],
        ],
      };
    }
    const opts: string[] = [];
    const changes: string[] = [];
    const after = { ...current };
    if (a.uid !== undefined && a.uid !== current.uid) {
      opts.push(`-u ${a.uid}`);
      changes.push(`uid ${current.uid} -> ${a.uid}`);
      after.uid = a.uid;
    }
    if (a.group && a.group !== current.group) {
      opts.push(`-g ${quote(a.group)}`);
      changes.push(`group ${current.group} -> ${a.group}`);
      after.group = a.group;
    }
    if (groups) {
      // The primary group is never listed as a supplementary one (id -Gn shows it, we drop it).
      const asked = groups.filter((g) => g !== after.group);
      const wanted = a.append ? [...new Set([...current.groups, ...asked])].sort() : asked;
      const missing = wanted.filter((g) => !current.groups.includes(g));
      const extra = current.groups.filter((g) => !wanted.includes(g));
      if (missing.length || extra.length) {
        opts.push(a.append ? `-a -G ${quote(missing.join(','))}` : `-G ${quote(wanted.join(','))}`);
        changes.push([...missing.map((g) => `+${g}`), ...extra.map((g) => `-${g}`)].join(' '));
        after.groups = wanted;
      }
    }
    if (a.comment !== undefined && a.comment !== current.comment) {
      opts.push(`-c ${quote(a.comment)}`);
      changes.push('comment');
      after.comment = a.comment;
    }
    if (a.home && a.home !== current.home) {
      opts.push(`-d ${quote(a.home)}${a.move_home ? ' -m' : ''}`);
      changes.push(`home ${current.home} -> ${a.home}`);
      after.home = a.home;
    }
    if (a.shell && a.shell !== current.shell) {
      opts.push(`-s ${quote(a.shell)}`);
      changes.push(`shell ${current.shell} -> ${a.shell}`);
      after.shell = a.shell;
    }
    if (a.password_lock !== undefined && a.password_lock !== current.locked) {
      opts.push(a.password_lock ? '-L' : '-U');
      changes.push(a.password_lock ? 'lock password' : 'unlock password');
      after.locked = a.password_lock;
    }
    if (!opts.length) return { commands: [], reason: `user ${a.name} is up to date` };
    return {
      commands: [{ kind: 'shell', script: `usermod ${opts.join(' ')} ${n}` }],
      reason: `user ${a.name}: ${changes.join(', ')}`,
      effects: [[userRef(a.name), after]],
    };
  },
};
