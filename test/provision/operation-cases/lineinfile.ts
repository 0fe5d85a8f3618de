import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

const SHELLS = '# /etc/shells: valid login shells\n/bin/sh\n/bin/bash\n';
const stat = (content: string, over: Record<string, unknown> = {}) => ({
  type: 'file',
  mode: '0644',
  owner: 'root',
  group: 'root',
  size: Buffer.byteLength(content, 'latin1'),
  sha256: createHash('sha256').update(Buffer.from(content, 'latin1')).digest('hex'),
  ...over,
});
const facts = (path: string, content: string | Buffer, over: Record<string, unknown> = {}) => ({ [`file:${path}`]: stat(content.toString('latin1'), over), [`content:${path}`]: Buffer.from(content) });
const put = (path: string, content: string, mode = '0644') => ({ kind: 'put' as const, path, content, mode, owner: 'root', group: 'root' });

export const cases: OperationCase[] = [
  { name: 'line appended at EOF', op: 'lineinfile', args: { path: '/etc/shells', line: '/usr/local/bin/vzsb-shell' }, facts: facts('/etc/shells', SHELLS), commands: [put('/etc/shells', SHELLS + '/usr/local/bin/vzsb-shell\n')], reason: 'update content of /etc/shells' },
  { name: 'line already present -> nothing', op: 'lineinfile', args: { path: '/etc/shells', line: '/bin/bash' }, facts: facts('/etc/shells', SHELLS), commands: [], reason: 'line present' },
  { name: 'file without final newline gets one before the new line', op: 'lineinfile', args: { path: '/etc/x', line: 'b' }, facts: facts('/etc/x', 'a'), commands: [put('/etc/x', 'a\nb\n')] },
  { name: 'regexp replaces the last match', op: 'lineinfile', args: { path: '/etc/ssh/sshd_config', regexp: '^#?PermitRootLogin', line: 'PermitRootLogin no' }, facts: facts('/etc/ssh/sshd_config', '#PermitRootLogin yes\nPort 22\nPermitRootLogin yes\n', { mode: '0600' }), commands: [put('/etc/ssh/sshd_config', '#PermitRootLogin yes\nPort 22\nPermitRootLogin no\n', '0600')] },
  { name: 'regexp matching the wanted line -> nothing', op: 'lineinfile', args: { path: '/etc/ssh/sshd_config', regexp: '^PermitRootLogin', line: 'PermitRootLogin no' }, facts: facts('/etc/ssh/sshd_config', 'PermitRootLogin no\n'), commands: [] },
  { name: 'regexp without match inserts after the insertafter match', op: 'lineinfile', args: { path: '/etc/x', regexp: '^b=', line: 'b=2', insertafter: '^a=' }, facts: facts('/etc/x', 'a=1\nc=3\n'), commands: [put('/etc/x', 'a=1\nb=2\nc=3\n')] },
  { name: 'insertafter without match appends', op: 'lineinfile', args: { path: '/etc/x', line: 'b=2', insertafter: '^zzz' }, facts: facts('/etc/x', 'a=1\n'), commands: [put('/etc/x', 'a=1\nb=2\n')] },
  { name: 'insertbefore BOF', op: 'lineinfile', args: { path: '/etc/x', line: '# managed', insertbefore: 'BOF' }, facts: facts('/etc/x', 'a=1\n'), commands: [put('/etc/x', '# managed\na=1\n')] },
  { name: 'insertbefore a regex', op: 'lineinfile', args: { path: '/etc/x', line: 'b=2', insertbefore: '^c=' }, facts: facts('/etc/x', 'a=1\nc=3\n'), commands: [put('/etc/x', 'a=1\nb=2\nc=3\n')] },
  { name: 'absent removes every matching line', op: 'lineinfile', args: { path: '/etc/x', regexp: '^tmp', state: 'absent' }, facts: facts('/etc/x', 'tmp1\nkeep\ntmp2\n'), commands: [put('/etc/x', 'keep\n')], effects: { 'content:/etc/x': Buffer.from('keep\n') } },
  { name: 'absent by exact line', op: 'lineinfile', args: { path: '/etc/shells', line: '/bin/sh', state: 'absent' }, facts: facts('/etc/shells', SHELLS), commands: [put('/etc/shells', '# /etc/shells: valid login shells\n/bin/bash\n')] },
  { name: 'absent with no match -> nothing', op: 'lineinfile', args: { path: '/etc/x', regexp: '^tmp', state: 'absent' }, facts: facts('/etc/x', 'keep\n'), commands: [], reason: 'no matching line' },
  { name: 'absent on a missing file -> nothing', op: 'lineinfile', args: { path: '/etc/x', line: 'a', state: 'absent' }, facts: { 'file:/etc/x': { type: 'absent' }, 'content:/etc/x': null }, commands: [], reason: 'does not exist' },
  { name: 'missing file without create -> error', op: 'lineinfile', args: { path: '/etc/x', line: 'a' }, facts: { 'file:/etc/x': { type: 'absent' }, 'content:/etc/x': null }, error: 'does not exist \\(set create: true' },
  { name: 'missing file with create and mode', op: 'lineinfile', args: { path: '/etc/x', line: 'a', create: true, mode: '0600' }, facts: { 'file:/etc/x': { type: 'absent' }, 'content:/etc/x': null }, commands: [{ kind: 'shell', script: 'mkdir -p -- /etc' }, put('/etc/x', 'a\n', '0600')], reason: 'create /etc/x' },
  { name: 'CRLF line present: rewritten with LF, as Ansible', op: 'lineinfile', args: { path: '/etc/x', line: 'b' }, facts: facts('/etc/x', 'a\r\nb\r\n'), commands: [put('/etc/x', 'a\r\nb\n')] },
  { name: 'Latin-1 bytes are kept', op: 'lineinfile', args: { path: '/etc/x', line: 'tea=2' }, facts: facts('/etc/x', Buffer.from('caf\xe9=1\n', 'latin1')), commands: [{ kind: 'put', path: '/etc/x', content: Buffer.from('caf\xe9=1\ntea=2\n', 'latin1').toString('utf8'), mode: '0644', owner: 'root', group: 'root' }] },
  { name: 'backrefs', op: 'lineinfile', args: { path: '/etc/x', regexp: '^port = (\\d+)$', line: 'port = \\1 # default', backrefs: true }, facts: facts('/etc/x', 'port = 22\n'), commands: [put('/etc/x', 'port = 22 # default\n')] },
  { name: 'backrefs without a match -> nothing', op: 'lineinfile', args: { path: '/etc/x', regexp: '^nothing(.*)', line: 'x\\1', backrefs: true }, facts: facts('/etc/x', 'a\n'), commands: [] },
  { name: 'search_string replaces the last literal match', op: 'lineinfile', args: { path: '/etc/x', search_string: 'x.y', line: 'x.y=9' }, facts: facts('/etc/x', 'x.y=1\nxzy=2\n'), commands: [put('/etc/x', 'x.y=9\nxzy=2\n')] },
  { name: 'firstmatch with insertafter', op: 'lineinfile', args: { path: '/etc/x', line: 'x', insertafter: '^a', firstmatch: true }, facts: facts('/etc/x', 'a\nb\na\n'), commands: [put('/etc/x', 'a\nx\nb\na\n')] },
  { name: 'alias dest', op: 'lineinfile', args: { dest: '/etc/shells', line: '/bin/bash' }, facts: facts('/etc/shells', SHELLS), commands: [] },
  { name: 'backup before the change', op: 'lineinfile', args: { path: '/etc/shells', line: '/bin/zsh', backup: true }, facts: facts('/etc/shells', SHELLS), reason: 'update content' },
  { name: 'same content, other mode -> chmod only', op: 'lineinfile', args: { path: '/etc/shells', line: '/bin/sh', mode: '0640' }, facts: facts('/etc/shells', SHELLS), commands: [{ kind: 'shell', script: 'chmod 0640 /etc/shells' }] },
  { name: 'a directory -> error', op: 'lineinfile', args: { path: '/etc', line: 'a' }, facts: { 'file:/etc': { type: 'directory', mode: '0755', owner: 'root', group: 'root' }, 'content:/etc': null }, error: 'is a directory' },
  { name: 'a symlink -> error naming the target', op: 'lineinfile', args: { path: '/etc/x', line: 'a' }, facts: { 'file:/etc/x': { type: 'link', target: '/srv/x' }, 'content:/etc/x': null }, error: 'link to /srv/x' },
  { name: 'bad regexp names the field', op: 'lineinfile', args: { path: '/etc/x', line: 'a', regexp: '(' }, error: 'regexp: a valid regular expression' },
  { name: 'line with a newline is rejected', op: 'lineinfile', args: { path: '/etc/x', line: 'a\nb' }, error: 'line: a single line' },
  { name: 'present needs line', op: 'lineinfile', args: { path: '/etc/x', regexp: 'a' }, error: 'line: required for state=present' },
  { name: 'absent needs regexp or line', op: 'lineinfile', args: { path: '/etc/x', state: 'absent' }, error: 'regexp: one of line, regexp or search_string is required' },
  { name: 'insertafter and insertbefore together are rejected', op: 'lineinfile', args: { path: '/etc/x', line: 'a', insertafter: 'EOF', insertbefore: 'BOF' }, error: 'insertbefore: use only one' },
];
