import type { OperationCase } from './types.js';

export const cases: OperationCase[] = [
  { name: 'new system group with gid', op: 'group', args: { name: 'vzsb', gid: 990, system: true }, facts: { 'group:vzsb': { exists: false } }, commands: [{ kind: 'shell', script: 'groupadd -g 990 -r vzsb' }], effects: { 'group:vzsb': { exists: true, gid: 990, members: [] } } },
  { name: 'new group, defaults', op: 'group', args: { name: 'students' }, facts: { 'group:students': { exists: false } }, commands: [{ kind: 'shell', script: 'groupadd students' }] },
  { name: 'exists -> nothing', op: 'group', args: { name: 'vzsb' }, facts: { 'group:vzsb': { exists: true, gid: 990, members: [] } }, commands: [], reason: 'group vzsb exists' },
  { name: 'exists with the same gid -> nothing', op: 'group', args: { name: 'vzsb', gid: 990 }, facts: { 'group:vzsb': { exists: true, gid: 990, members: ['a'] } }, commands: [] },
  { name: 'gid differs -> groupmod', op: 'group', args: { name: 'vzsb', gid: 991 }, facts: { 'group:vzsb': { exists: true, gid: 990, members: [] } }, commands: [{ kind: 'shell', script: 'groupmod -g 991 vzsb' }], reason: 'gid 990 -> 991' },
  { name: 'absent when present -> groupdel', op: 'group', args: { name: 'vzsb', state: 'absent' }, facts: { 'group:vzsb': { exists: true, gid: 990, members: [] } }, commands: [{ kind: 'shell', script: 'groupdel vzsb' }], effects: { 'group:vzsb': { exists: false } } },
  { name: 'absent when absent -> nothing', op: 'group', args: { name: 'vzsb', state: 'absent' }, facts: { 'group:vzsb': { exists: false } }, commands: [] },
  { name: 'gid as a string, as Ansible takes it', op: 'group', args: { name: 'vzsb', gid: '42012' }, facts: { 'group:vzsb': { exists: false } }, commands: [{ kind: 'shell', script: 'groupadd -g 42012 vzsb' }] },
  { name: 'non_unique gid', op: 'group', args: { name: 'vzsb', gid: 0, non_unique: true }, facts: { 'group:vzsb': { exists: false } }, commands: [{ kind: 'shell', script: 'groupadd -g 0 -o vzsb' }] },
  { name: 'negative gid names the field', op: 'group', args: { name: 'vzsb', gid: -1 }, error: 'gid' },
  { name: 'unknown argument rejected', op: 'group', args: { name: 'vzsb', members: ['a'] }, error: 'unknown field members' },
];
