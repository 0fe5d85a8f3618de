import { z } from 'zod';
import type { UserState } from '../facts/users.js';
import { quote } from '../shell.js';
import type { FactRef, Operation } from '../types.js';
import { pathSchema, sha256, withAliases } from './common.js';
import type { GroupState } from '../facts/users.js';

/** Names useradd/groupadd accept on Debian and RHEL (a trailing $ for machine accounts). */
export const accountName = z.string().regex(/^[a-z_][a-z0-9_.-]{0,31}\$?$/, 'a user or group name like "vzsb" (lower case, up to 32 characters)');

/** An id as Ansible takes it: a number, or a string of digits ("42012"). */
export const idSchema = z.union([z.number().int().min(0), z.string().regex(/^\d+$/, 'a number').transform(Number)]);

/** Ansible's list arguments also take "a,b" as a list. */
const nameList = z.union([z.string(), z.array(z.string())]).transform((v) => (typeof v === 'string' ? v.split(',') : v).map((s) => s.trim()).filter(Boolean)).pipe(z.array(accountName));

const args = withAliases(z.strictObject({
  name: accountName,
  state: z.enum(['present', 'absent']).default('present'),
  uid: idSchema.optional(),
  /** With uid: allow a uid another account has (useradd/usermod -o). */
  non_unique: z.boolean().default(false),
  /** Primary group (name); must exist. */
  group: accountName.optional(),
  /** Supplementary groups; with append: false (the default) exactly these. */
  groups: nameList.optional(),
  append: z.boolean().default(false),
  comment: z.string().refine((s) => !/[:\n]/.test(s), 'no ":" or newline').optional(),
  shell: pathSchema.optional(),
  home: pathSchema.optional(),
  /** Create the home directory (useradd -m), and later a missing one, from /etc/skel, as Ansible does. */
  create_home: z.boolean().default(true),
  /** The crypted password (as in /etc/shadow); compared on every run (update_password: always). */
  password: z.string().refine((s) => !/[:\n]/.test(s), 'no ":" or newline').optional(),
  update_password: z.enum(['always', 'on_create']).default('always'),
  /** Account expiry, seconds since 1970 (a negative value removes it). */
  expires: z.number().optional(),
  /** Move the contents when home changes (usermod -m). */
  move_home: z.boolean().default(false),
  system: z.boolean().default(false),
  /** Lock (true) or unlock (false) the password; unset leaves it alone. */
  password_lock: z.boolean().optional(),
  /** state=absent: also remove the home directory and mail spool (userdel -r). */
  remove: z.boolean().default(false),
  /** Make ~/.ssh/id_rsa (ssh-keygen) when the user has none. */
  generate_ssh_key: z.boolean().default(false),
  ssh_key_type: z.string().regex(/^[a-z0-9-]+$/).default('rsa'),
  ssh_key_bits: z.number().int().min(0).default(0),
  ssh_key_file: z.string().optional(),
  ssh_key_comment: z.string().optional(),
}), { user: 'name', createhome: 'create_home' });
export type UserArgs = z.infer<typeof args>;

const userRef = (name: string): FactRef => ({ fact: 'user', arg: name });

function groupList(a: UserArgs): string[] | undefined {
  return a.groups === undefined ? undefined : [...new Set(a.groups)].sort();
}

const groupRef = (name: string): FactRef => ({ fact: 'group', arg: name });
/** Whether the user's key file exists (its home is known on the host only). */
const keyRef = (a: UserArgs): FactRef => ({ fact: 'succeeds', arg: `test -e "$(getent passwd ${quote(a.name)} | cut -d: -f6)/${(a.ssh_key_file ?? `.ssh/id_${a.ssh_key_type}`).replace(/["$`\\]/g, '')}"` });
const keyFile = (a: UserArgs, home: string) => (a.ssh_key_file ? (a.ssh_key_file.startsWith('/') ? a.ssh_key_file : `${home}/${a.ssh_key_file}`) : `${home}/.ssh/id_${a.ssh_key_type}`);
const days = (seconds: number) => (seconds < 0 ? -1 : Math.floor(seconds / 86400));
const expiresArg = (seconds: number) => (seconds < 0 ? "''" : new Date(seconds * 1000).toISOString().slice(0, 10));

/** Ansible's create_homedir: /etc/skel copied, mode from login.defs' UMASK, owned by the user. */
function homedirScript(name: string, home: string): string {
  const h = quote(home);
  return [
    `if [ ! -e ${h} ]; then if [ -d /etc/skel ]; then mkdir -p -- "$(dirname ${h})" && cp -a /etc/skel ${h}; else mkdir -p -- ${h}; fi`,
    `vzsb_u=$(sed -n 's/^UMASK[[:space:]]\\{1,\\}\\([0-9]\\{1,\\}\\)$/\\1/p' /etc/login.defs 2>/dev/null | tail -n 1); if [ -n "$vzsb_u" ]; then chmod "$(printf %o $((0777 & ~0$vzsb_u)))" ${h}; fi`,
    `chown -R ${quote(name)}: ${h}; fi`,
  ].join('\n');
}

function sshKeyScript(a: UserArgs, home: string): string {
  const f = quote(keyFile(a, home));
  const comment = a.ssh_key_comment ?? 'ansible-generated on $(hostname)';
  return [
    `if [ ! -e ${f} ]; then mkdir -p -- "$(dirname ${f})" && chmod 0700 "$(dirname ${f})" && chown ${quote(a.name)}: "$(dirname ${f})"`,
    `ssh-keygen -q -t ${a.ssh_key_type}${a.ssh_key_bits ? ` -b ${a.ssh_key_bits}` : ''} -C "${comment.replace(/["\\`]/g, '\\$&')}" -N '' -f ${f} </dev/null >/dev/null`,
    `chown ${quote(a.name)}: ${f} ${f}.pub; fi`,
  ].join('\n');
}

/** Ansible's `user`: a local account (useradd/usermod/userdel), compared field by field. */
export const userOperation: Operation<UserArgs> = {
  name: 'user',
  args,
  facts: (a) => [userRef(a.name), ...(a.state === 'present' && !a.group ? [groupRef(a.name)] : []), ...(a.state === 'present' && a.generate_ssh_key ? [keyRef(a)] : [])],
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
      if (a.uid !== undefined) opts.push(`-u ${a.uid}${a.non_unique ? ' -o' : ''}`);
      if (a.group) opts.push(`-g ${quote(a.group)}`);
      // As Ansible: a group named like the user that exists already is not the user's group (-N).
      else if (facts.get<GroupState>(groupRef(a.name)).exists) opts.push('-N');
      if (groups?.length) opts.push(`-G ${quote(groups.join(','))}`);
      if (a.comment !== undefined) opts.push(`-c ${quote(a.comment)}`);
      if (a.home) opts.push(`-d ${quote(a.home)}`);
      if (a.shell) opts.push(`-s ${quote(a.shell)}`);
      if (a.expires !== undefined) opts.push(`-e ${expiresArg(a.expires)}`);
      if (a.password !== undefined) opts.push(`-p ${quote(a.password_lock ? `!${a.password}` : a.password)}`);
      opts.push(a.create_home ? '-m' : '-M');
      if (a.system) opts.push('-r');
      const home = a.home ?? `/home/${a.name}`;
      const script = [
        // useradd cannot make missing parents of the home: Ansible makes them
        ...(a.home && a.create_home ? [`mkdir -p -- "$(dirname ${quote(a.home)})"`] : []),
        `useradd ${opts.join(' ')} ${n}`,
        ...(a.password_lock === false ? [`usermod -U ${n}`] : []),
        ...(a.generate_ssh_key ? [sshKeyScript(a, home)] : []),
      ].join('\n');
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
              home,
              shell: a.shell ?? '/bin/sh',
              // useradd leaves the password locked ("!") until one is set.
              locked: a.password_lock ?? a.password === undefined,
              ...(a.password !== undefined ? { passwordDigest: sha256(`${a.password_lock ? '!' : ''}${a.password}\n`) } : {}),
              expireDays: a.expires === undefined ? -1 : days(a.expires),
              homeExists: a.create_home,
            } satisfies UserState,
          ],
        ],
      };
    }
    const opts: string[] = [];
    const changes: string[] = [];
    const after = { ...current };
    if (a.uid !== undefined && a.uid !== current.uid) {
      opts.push(`-u ${a.uid}${a.non_unique ? ' -o' : ''}`);
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
    if (a.password !== undefined && a.update_password === 'always') {
      const want = current.locked && !a.password.startsWith('!') && a.password_lock !== false ? `!${a.password}` : a.password;
      if (current.passwordDigest !== sha256(`${want}\n`) && current.passwordDigest !== sha256(`${a.password}\n`)) {
        opts.push(`-p ${quote(a.password)}`);
        changes.push('password');
        after.passwordDigest = sha256(`${a.password}\n`);
      }
    }
    if (a.expires !== undefined && days(a.expires) !== (current.expireDays ?? -1) && !(a.expires < 0 && (current.expireDays ?? -1) < 0)) {
      opts.push(`-e ${expiresArg(a.expires)}`);
      changes.push('expires');
      after.expireDays = days(a.expires);
    }
    const extra: string[] = [];
    // Ansible makes a missing home of an existing user when create_home (its default).
    if (a.create_home && current.homeExists === false) {
      extra.push(homedirScript(a.name, after.home));
      changes.push(`create home ${after.home}`);
      after.homeExists = true;
    }
    if (a.generate_ssh_key && !facts.get<boolean>(keyRef(a))) {
      extra.push(sshKeyScript(a, after.home));
      changes.push('ssh key');
    }
    if (!opts.length && !extra.length) return { commands: [], reason: `user ${a.name} is up to date` };
    return {
      commands: [{ kind: 'shell', script: [...(opts.length ? [`usermod ${opts.join(' ')} ${n}`] : []), ...extra].join('\n') }],
      reason: `user ${a.name}: ${changes.join(', ')}`,
      effects: [[userRef(a.name), after]],
    };
  },
};
