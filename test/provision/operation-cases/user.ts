import type { OperationCase } from './types.js';

const vzsb = (over: Record<string, unknown> = {}) => ({
  exists: true,
  uid: 990,
  gid: 990,
  group: 'vzsb',
  groups: ['adm'],
  comment: 'vzsandbox',
  home: '/var/lib/vzsb',
  shell: '/usr/sbin/nologin',
  locked: true,
  homeExists: true,
  ...over,
});
const noGroup = (name: string) => ({ [`group:${name}`]: { exists: false } });
const group = (name: string) => ({ [`group:${name}`]: { exists: true, gid: 990, members: [] } });

export const cases: OperationCase[] = [
  {
    name: 'new system user with all fields',
    op: 'user',
    args: { name: 'vzsb', uid: 990, group: 'vzsb', groups: ['adm', 'lxc'], comment: 'vzsandbox daemons', home: '/var/lib/vzsb', shell: '/usr/sbin/nologin', system: true, create_home: false },
    facts: { 'user:vzsb': { exists: false } },
    commands: [{ kind: 'shell', script: "useradd -u 990 -g vzsb -G adm,lxc -c 'vzsandbox daemons' -d /var/lib/vzsb -s /usr/sbin/nologin -M -r vzsb" }],
    reason: 'create user vzsb',
    effects: { 'user:vzsb': { exists: true, uid: 990, gid: -1, group: 'vzsb', groups: ['adm', 'lxc'], comment: 'vzsandbox daemons', home: '/var/lib/vzsb', shell: '/usr/sbin/nologin', locked: true, expireDays: -1, homeExists: false } },
  },
  { name: 'new user, defaults: home created', op: 'user', args: { name: 'student1' }, facts: { 'user:student1': { exists: false }, ...noGroup('student1') }, commands: [{ kind: 'shell', script: 'useradd -m student1' }] },
  { name: 'a group named like the new user exists -> -N, as Ansible', op: 'user', args: { name: 'student1' }, facts: { 'user:student1': { exists: false }, ...group('student1') }, commands: [{ kind: 'shell', script: 'useradd -N -m student1' }] },
  { name: 'string gid-like uid and comma groups, as Ansible takes them', op: 'user', args: { name: 'student1', uid: '42012', groups: 'adm,lxc' }, facts: { 'user:student1': { exists: false }, ...noGroup('student1') }, commands: [{ kind: 'shell', script: 'useradd -u 42012 -G adm,lxc -m student1' }] },
  { name: 'home with missing parents, password and expiry', op: 'user', args: { name: 'student1', home: '/srv/homes/student1', password: '$6$salt$hash', expires: 1767225600 }, facts: { 'user:student1': { exists: false }, ...noGroup('student1') }, commands: [{ kind: 'shell', script: "mkdir -p -- \"$(dirname /srv/homes/student1)\"\nuseradd -d /srv/homes/student1 -e 2026-01-01 -p '$6$salt$hash' -m student1" }] },
  { name: 'existing user without its home -> home made from /etc/skel', op: 'user', args: { name: 'vzsb' }, facts: { 'user:vzsb': vzsb({ homeExists: false }), ...group('vzsb') }, reason: 'create home /var/lib/vzsb' },
  { name: 'existing user without its home, create_home false -> nothing', op: 'user', args: { name: 'vzsb', create_home: false }, facts: { 'user:vzsb': vzsb({ homeExists: false }), ...group('vzsb') }, commands: [] },
  { name: 'expiry changed', op: 'user', args: { name: 'vzsb', group: 'vzsb', expires: 86400 * 20000 }, facts: { 'user:vzsb': vzsb({ expireDays: -1 }) }, commands: [{ kind: 'shell', script: 'usermod -e 2024-10-04 vzsb' }] },
  { name: 'non_unique uid', op: 'user', args: { name: 'vzsb', group: 'vzsb', uid: 0, non_unique: true }, facts: { 'user:vzsb': vzsb() }, commands: [{ kind: 'shell', script: 'usermod -u 0 -o vzsb' }] },
  { name: 'new user with password unlocked', op: 'user', args: { name: 'student1', password_lock: false }, facts: { 'user:student1': { exists: false }, ...noGroup('student1') }, commands: [{ kind: 'shell', script: 'useradd -m student1\nusermod -U student1' }] },
  { name: 'existing user, same fields -> nothing', op: 'user', args: { name: 'vzsb', uid: 990, group: 'vzsb', groups: ['adm'], shell: '/usr/sbin/nologin', home: '/var/lib/vzsb', password_lock: true }, facts: { 'user:vzsb': vzsb() }, commands: [], reason: 'up to date' },
  { name: 'shell and uid changed -> one usermod', op: 'user', args: { name: 'vzsb', uid: 991, shell: '/usr/local/bin/vzsb-shell' }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [{ kind: 'shell', script: 'usermod -u 991 -s /usr/local/bin/vzsb-shell vzsb' }], effects: { 'user:vzsb': vzsb({ uid: 991, shell: '/usr/local/bin/vzsb-shell' }) } },
  { name: 'groups without append: exactly these', op: 'user', args: { name: 'vzsb', groups: ['lxc'] }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [{ kind: 'shell', script: 'usermod -G lxc vzsb' }], reason: '+lxc -adm' },
  { name: 'groups with append: only the missing ones', op: 'user', args: { name: 'vzsb', groups: ['lxc', 'adm'], append: true }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [{ kind: 'shell', script: 'usermod -a -G lxc vzsb' }], effects: { 'user:vzsb': vzsb({ groups: ['adm', 'lxc'] }) } },
  { name: 'groups with append, all there -> nothing', op: 'user', args: { name: 'vzsb', groups: 'adm', append: true }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [] },
  { name: 'the primary group in groups is not a change', op: 'user', args: { name: 'vzsb', groups: ['vzsb', 'adm'] }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [] },
  { name: 'home moved', op: 'user', args: { name: 'vzsb', home: '/srv/vzsb', move_home: true }, facts: { 'user:vzsb': vzsb(), ...group('vzsb') }, commands: [{ kind: 'shell', script: 'usermod -d /srv/vzsb -m vzsb' }] },
  { name: 'password lock', op: 'user', args: { name: 'vzsb', password_lock: true }, facts: { 'user:vzsb': vzsb({ locked: false }), ...group('vzsb') }, commands: [{ kind: 'shell', script: 'usermod -L vzsb' }] },
  { name: 'absent when present, with remove', op: 'user', args: { name: 'vzsb', state: 'absent', remove: true }, facts: { 'user:vzsb': vzsb() }, commands: [{ kind: 'shell', script: 'userdel -r vzsb' }], effects: { 'user:vzsb': { exists: false } } },
  { name: 'absent when absent -> nothing', op: 'user', args: { name: 'vzsb', state: 'absent' }, facts: { 'user:vzsb': { exists: false } }, commands: [], reason: 'does not exist' },
  { name: 'bad user name names the field', op: 'user', args: { name: 'Root User' }, error: 'name: a user or group name' },
  { name: 'relative shell rejected', op: 'user', args: { name: 'vzsb', shell: 'bash' }, error: 'shell: .*absolute path' },
  { name: 'bad supplementary group names the index', op: 'user', args: { name: 'vzsb', groups: ['adm', 'a:b'] }, error: 'groups\\[1\\]' },
  { name: 'comment with a colon rejected', op: 'user', args: { name: 'vzsb', comment: 'a:b' }, error: 'comment: no ":"' },
];
