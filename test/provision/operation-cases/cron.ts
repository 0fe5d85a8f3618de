import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

// Ansible's cron: "#Ansible: <name>" markers, the file rewritten in place (an existing file keeps
// its mode), a cron_file emptied by state=absent removed.
const PATH = '/etc/cron.d/vzsb-hypervisor';
const stat = (content: string, over: Record<string, unknown> = {}) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex'), ...over });
const facts = (content: string | null, over: Record<string, unknown> = {}) => ({ [`file:${PATH}`]: content === null ? { type: 'absent' } : stat(content, over), [`content:${PATH}`]: content === null ? null : Buffer.from(content) });
const put = (content: string, mode = '0644') => ({ kind: 'put' as const, path: PATH, content, mode, owner: 'root', group: 'root' });
const RECLAIM = '#Ansible: reclaim idle containers\n*/15 * * * * root /usr/local/bin/vzsb reclaim --idle\n';
const RESET = '#Ansible: nightly reset\n30 3 * * * root /usr/local/bin/vzsb pools reset\n';
const reclaim = { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', user: 'root', minute: '*/15', job: '/usr/local/bin/vzsb reclaim --idle' };

export const cases: OperationCase[] = [
  { name: 'new entry creates the file', op: 'cron', args: reclaim, facts: facts(null), commands: [put(RECLAIM)], reason: 'set entry "reclaim idle containers"', effects: { [`content:${PATH}`]: Buffer.from(RECLAIM) } },
  { name: 'same entry -> nothing', op: 'cron', args: { ...reclaim, cron_file: PATH }, facts: facts(RECLAIM), commands: [], reason: 'up to date' },
  { name: 'an entry an earlier vzsb marked "#vzsb:" becomes Ansible\'s, not a duplicate', op: 'cron', args: reclaim, facts: facts(RECLAIM.replace('#Ansible: ', '#vzsb: ')), commands: [put(RECLAIM)] },
  { name: 'a job line without a marker is adopted', op: 'cron', args: reclaim, facts: facts('*/15 * * * * root /usr/local/bin/vzsb reclaim --idle\n'), commands: [put(RECLAIM)] },
  { name: 'second entry appended, first kept', op: 'cron', args: { name: 'nightly reset', cron_file: 'vzsb-hypervisor', user: 'root', minute: 30, hour: 3, job: '/usr/local/bin/vzsb pools reset' }, facts: facts(RECLAIM), commands: [put(RECLAIM + RESET)] },
  { name: 'changed schedule replaces the entry in place', op: 'cron', args: { ...reclaim, minute: '*/5' }, facts: facts(RECLAIM + RESET), commands: [put('#Ansible: reclaim idle containers\n*/5 * * * * root /usr/local/bin/vzsb reclaim --idle\n' + RESET)] },
  { name: 'special_time and user', op: 'cron', args: { name: 'boot', cron_file: 'vzsb-hypervisor', special_time: 'reboot', user: 'vzsb', job: '/usr/local/bin/vzsb warm' }, facts: facts(null), commands: [put('#Ansible: boot\n@reboot vzsb /usr/local/bin/vzsb warm\n')] },
  { name: 'disabled entry is commented out', op: 'cron', args: { ...reclaim, disabled: true }, facts: facts(RECLAIM), commands: [put('#Ansible: reclaim idle containers\n#*/15 * * * * root /usr/local/bin/vzsb reclaim --idle\n')] },
  { name: 'env variable goes first', op: 'cron', args: { name: 'MAILTO', env: true, job: '', cron_file: 'vzsb-hypervisor', user: 'root' }, error: 'job' },
  { name: 'env variable inserted at the top', op: 'cron', args: { name: 'MAILTO', env: true, job: 'ops@example.org', cron_file: 'vzsb-hypervisor', user: 'root' }, facts: facts(RECLAIM), commands: [put('MAILTO="ops@example.org"\n' + RECLAIM)] },
  { name: 'absent removes only its entry', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM + RESET), commands: [put(RESET)] },
  { name: 'absent removes the file it empties', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM), commands: [{ kind: 'shell', script: `rm -f -- ${PATH}` }], effects: { [`file:${PATH}`]: { type: 'absent' }, [`content:${PATH}`]: null } },
  { name: 'absent without the entry -> nothing', op: 'cron', args: { name: 'other', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM), commands: [], reason: 'up to date' },
  { name: 'absent without the file -> nothing', op: 'cron', args: { name: 'other', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(null), commands: [] },
  { name: 'an existing file keeps its mode, as Ansible', op: 'cron', args: { ...reclaim, minute: '*/5' }, facts: facts(RECLAIM, { mode: '0600' }), commands: [put('#Ansible: reclaim idle containers\n*/5 * * * * root /usr/local/bin/vzsb reclaim --idle\n', '0600')] },
  { name: "a user's crontab", op: 'cron', args: { name: 'sync', user: 'student1', minute: 0, job: '/usr/bin/true' }, facts: { 'crontab:student1': null }, reason: 'in the crontab of student1' },
  { name: 'cron_file with a dot in /etc/cron.d is refused (cron skips it; Ansible only warns)', op: 'cron', args: { name: 'x', cron_file: 'vzsb.cron', job: 'true' }, error: 'cron_file: a file name in /etc/cron.d' },
  { name: '/etc/crontab is refused, as in Ansible', op: 'cron', args: { name: 'x', cron_file: '/etc/crontab', job: 'true' }, error: 'cron_file' },
  { name: 'bad minute names the field', op: 'cron', args: { name: 'x', cron_file: 'vzsb', minute: '5 4', job: 'true' }, error: 'minute: a cron field' },
  { name: 'job required for present', op: 'cron', args: { name: 'x', cron_file: 'vzsb' }, error: 'job: required for state=present' },
  { name: 'bad special_time names the field', op: 'cron', args: { name: 'x', cron_file: 'vzsb', special_time: 'boot', job: 'true' }, error: 'special_time' },
];
