import type { OperationCase } from './types.js';

const file = (over: Record<string, unknown> = {}) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: 6, sha256: '5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03', ...over });

export const cases: OperationCase[] = [
  { name: 'directory absent -> mkdir with attributes', op: 'file', args: { path: '/srv/x', state: 'directory', mode: '0750', owner: 'vzsb' }, facts: { 'file:/srv/x': { type: 'absent' } }, commands: [{ kind: 'shell', script: 'mkdir -p -- /srv/x' }, { kind: 'shell', script: 'chown vzsb /srv/x\nchmod 0750 /srv/x' }] },
  { name: 'directory present with same attributes -> nothing', op: 'file', args: { path: '/srv/x', state: 'directory', mode: '750' }, facts: { 'file:/srv/x': { type: 'directory', mode: '0750', owner: 'root', group: 'root' } }, commands: [], reason: 'exists' },
  { name: 'directory mode differs -> chmod only', op: 'file', args: { path: '/srv/x', state: 'directory', mode: '0700' }, facts: { 'file:/srv/x': { type: 'directory', mode: '0755', owner: 'root', group: 'root' } }, commands: [{ kind: 'shell', script: 'chmod 0700 /srv/x' }] },
  { name: 'directory over a regular file -> error', op: 'file', args: { path: '/srv/x', state: 'directory' }, facts: { 'file:/srv/x': file() }, error: 'is a file, not a directory' },
  { name: 'absent when present -> rm', op: 'file', args: { path: '/tmp/a b', state: 'absent' }, facts: { 'file:/tmp/a b': file() }, commands: [{ kind: 'shell', script: "rm -rf -- '/tmp/a b'" }], effects: { 'file:/tmp/a b': { type: 'absent' } } },
  { name: 'absent when absent -> nothing', op: 'file', args: { path: '/tmp/a', state: 'absent' }, facts: { 'file:/tmp/a': { type: 'absent' } }, commands: [] },
  { name: 'link created', op: 'file', args: { path: '/etc/l', state: 'link', src: '/etc/t' }, facts: { 'file:/etc/l': { type: 'absent' } }, commands: [{ kind: 'shell', script: 'ln -sfn -- /etc/t /etc/l' }] },
  { name: 'link already right', op: 'file', args: { path: '/etc/l', state: 'link', src: '/etc/t' }, facts: { 'file:/etc/l': { type: 'link', target: '/etc/t' } }, commands: [] },
  { name: 'link needs src', op: 'file', args: { path: '/etc/l', state: 'link' }, error: 'src: required for state=link' },
  { name: 'relative path rejected', op: 'file', args: { path: 'etc/x', state: 'directory' }, error: 'path: .*absolute path' },
  { name: 'bad mode rejected', op: 'file', args: { path: '/x', state: 'directory', mode: '0999' }, error: 'mode' },
  { name: 'unknown argument rejected', op: 'file', args: { path: '/x', stat: 'directory' }, error: 'unknown field stat' },
  { name: 'touch absent -> touch', op: 'file', args: { path: '/x', state: 'touch' }, facts: { 'file:/x': { type: 'absent' } }, commands: [{ kind: 'shell', script: 'touch -- /x' }] },
  { name: 'copy content to absent file', op: 'copy', args: { dest: '/etc/motd', content: 'hello\n', mode: '0644' }, facts: { 'file:/etc/motd': { type: 'absent' } }, commands: [{ kind: 'put', path: '/etc/motd', content: 'hello\n', mode: '0644', owner: 'root', group: 'root' }], reason: 'create /etc/motd' },
  { name: 'copy same content -> nothing', op: 'copy', args: { dest: '/etc/motd', content: 'hello\n' }, facts: { 'file:/etc/motd': file() }, commands: [], reason: 'up to date' },
  { name: 'copy same content, other owner -> chown only', op: 'copy', args: { dest: '/etc/motd', content: 'hello\n', owner: 'nobody' }, facts: { 'file:/etc/motd': file() }, commands: [{ kind: 'shell', script: 'chown nobody /etc/motd' }] },
  { name: 'copy changed content keeps the current mode', op: 'copy', args: { dest: '/etc/motd', content: 'bye\n' }, facts: { 'file:/etc/motd': file({ mode: '0600' }) }, commands: [{ kind: 'put', path: '/etc/motd', content: 'bye\n', mode: '0600', owner: 'root', group: 'root' }] },
  { name: 'copy with diff reads the old content', op: 'copy', diff: true, args: { dest: '/etc/motd', content: 'bye\n' }, facts: { 'file:/etc/motd': file(), 'content:/etc/motd': 'hello\n' }, commands: [{ kind: 'put', path: '/etc/motd', content: 'bye\n', mode: '0644', owner: 'root', group: 'root' }] },
  { name: 'copy needs src or content', op: 'copy', args: { dest: '/etc/motd' }, error: 'exactly one of src or content' },
  { name: 'copy onto a directory -> error', op: 'copy', args: { dest: '/etc', content: 'x' }, facts: { 'file:/etc': { type: 'directory', mode: '0755', owner: 'root', group: 'root' } }, error: 'is a directory' },
  { name: 'command runs by default', op: 'command', args: { cmd: 'echo hi' }, commands: [{ kind: 'shell', script: 'echo hi' }] },
  { name: 'command skipped when creates exists', op: 'command', args: { cmd: 'make install', creates: '/usr/bin/x' }, facts: { 'exists:/usr/bin/x': true }, commands: [], reason: '/usr/bin/x exists' },
  { name: 'command runs when creates is missing, in chdir', op: 'command', args: { cmd: 'make', chdir: '/src', creates: '/usr/bin/x' }, facts: { 'exists:/usr/bin/x': false }, commands: [{ kind: 'shell', script: 'cd /src\nmake' }], effects: { 'exists:/usr/bin/x': true } },
  { name: 'command skipped when removes is missing', op: 'command', args: { cmd: 'rm /x', removes: '/x' }, facts: { 'exists:/x': false }, commands: [] },
  { name: 'command skipped when unless succeeds', op: 'command', args: { cmd: 'ip route add x', unless: 'ip route show x | grep -q via' }, facts: { 'succeeds:ip route show x | grep -q via': true }, commands: [], reason: 'unless: ip route show x' },
  { name: 'command runs when unless fails', op: 'command', args: { cmd: 'ip route add x', unless: 'ip route show x | grep -q via' }, facts: { 'succeeds:ip route show x | grep -q via': false }, commands: [{ kind: 'shell', script: 'ip route add x' }], effects: { 'succeeds:ip route show x | grep -q via': true } },
  { name: 'command skipped when onlyif fails', op: 'command', args: { cmd: 'systemctl reload x', onlyif: 'test -e /run/x.pid' }, facts: { 'succeeds:test -e /run/x.pid': false }, commands: [] },
  { name: 'argv is quoted', op: 'command', args: { argv: ['echo', "it's", 'a b'] }, commands: [{ kind: 'shell', script: "echo 'it'\\''s' 'a b'" }] },
];
