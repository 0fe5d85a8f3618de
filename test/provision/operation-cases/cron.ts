import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

const PATH = '/etc/cron.d/vzsb-hypervisor';
const stat = (content: string, over: Record<string, unknown> = {}) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex'), ...over });
const facts = (content: string | null, over: Record<string, unknown> = {}) => ({ [`file:${PATH}`]: content === null ? { type: 'absent' } : stat(content, over), [`content:${PATH}`]: content });
const put = (content: string) => ({ kind: 'put' as const, path: PATH, content, mode: '0644', owner: 'root', group: 'root' });
const RECLAIM = '#vzsb: reclaim idle containers\n*/15 * * * * root /usr/local/bin/vzsb reclaim --idle\n';
const RESET = '#vzsb: nightly reset\n30 3 * * * root /usr/local/bin/vzsb pools reset\n';

export const cases: OperationCase[] = [
  { name: 'new entry creates the file', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', minute: '*/15', job: '/usr/local/bin/vzsb reclaim --idle' }, facts: facts(null), commands: [put(RECLAIM)], reason: 'set entry "reclaim idle containers"', effects: { [`content:${PATH}`]: RECLAIM } },
  { name: 'same entry -> nothing', op: 'cron', args: { name: 'reclaim idle containers', cron_file: PATH, minute: '*/15', job: '/usr/local/bin/vzsb reclaim --idle' }, facts: facts(RECLAIM), commands: [], reason: 'up to date' },
  { name: 'second entry appended, first kept', op: 'cron', args: { name: 'nightly reset', cron_file: 'vzsb-hypervisor', minute: 30, hour: 3, job: '/usr/local/bin/vzsb pools reset' }, facts: facts(RECLAIM), commands: [put(RECLAIM + RESET)] },
  { name: 'changed schedule replaces the entry in place', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', minute: '*/5', job: '/usr/local/bin/vzsb reclaim --idle' }, facts: facts(RECLAIM + RESET), commands: [put('#vzsb: reclaim idle containers\n*/5 * * * * root /usr/local/bin/vzsb reclaim --idle\n' + RESET)] },
  { name: 'special_time and user', op: 'cron', args: { name: 'boot', cron_file: 'vzsb-hypervisor', special_time: 'reboot', user: 'vzsb', job: '/usr/local/bin/vzsb warm' }, facts: facts(null), commands: [put('#vzsb: boot\n@reboot vzsb /usr/local/bin/vzsb warm\n')] },
  { name: 'disabled entry is commented out', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', minute: '*/15', job: '/usr/local/bin/vzsb reclaim --idle', disabled: true }, facts: facts(RECLAIM), commands: [put('#vzsb: reclaim idle containers\n#*/15 * * * * root /usr/local/bin/vzsb reclaim --idle\n')] },
  { name: 'absent removes only its entry', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM + RESET), commands: [put(RESET)] },
  { name: 'absent removes the file it empties', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM), commands: [{ kind: 'shell', script: `rm -f -- ${PATH}` }], effects: { [`file:${PATH}`]: { type: 'absent' }, [`content:${PATH}`]: null } },
  { name: 'absent without the entry -> nothing', op: 'cron', args: { name: 'other', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(RECLAIM), commands: [], reason: 'no entry "other"' },
  { name: 'absent without the file -> nothing', op: 'cron', args: { name: 'other', cron_file: 'vzsb-hypervisor', state: 'absent' }, facts: facts(null), commands: [] },
  { name: 'group-writable file is fixed', op: 'cron', args: { name: 'reclaim idle containers', cron_file: 'vzsb-hypervisor', minute: '*/15', job: '/usr/local/bin/vzsb reclaim --idle' }, facts: facts(RECLAIM, { mode: '0664' }), commands: [{ kind: 'shell', script: `chmod 0644 ${PATH}` }] },
  { name: 'cron_file with a dot is rejected (cron skips it)', op: 'cron', args: { name: 'x', cron_file: 'vzsb.cron', job: 'true' }, error: 'cron_file: a file name in /etc/cron.d' },
  { name: 'cron_file elsewhere is rejected', op: 'cron', args: { name: 'x', cron_file: '/etc/crontab', job: 'true' }, error: 'cron_file' },
  { name: 'bad minute names the field', op: 'cron', args: { name: 'x', cron_file: 'vzsb', minute: '5 4', job: 'true' }, error: 'minute: a cron field' },
  { name: 'job required for present', op: 'cron', args: { name: 'x', cron_file: 'vzsb' }, error: 'job: required for state=present' },
  { name: 'bad special_time names the field', op: 'cron', args: { name: 'x', cron_file: 'vzsb', special_time: 'boot', job: 'true' }, error: 'special_time' },
];
