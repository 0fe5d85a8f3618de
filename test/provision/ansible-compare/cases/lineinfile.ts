import { writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

const file = (content: string | Buffer, name = 'f') => (d: string) => writeFileSync(`${d}/${name}`, content);
const CONF = '# settings\nalpha=1\nbeta=2\n# end\n';

// Read from lineinfile's integration target (insert at BOF/EOF, after/before a match, regexp
// replacement, backrefs, removal, create, files without a final newline, empty files) and
// written here as our own cases.
export const cases: CompareCase[] = [
  { name: 'append at EOF', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: gamma=3 }` },
  { name: 'line already present', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: beta=2 }` },
  { name: 'insertbefore BOF', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: '# managed', insertbefore: BOF }` },
  { name: 'insertafter a regex', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: a2=1, insertafter: '^alpha' }` },
  { name: 'insertbefore a regex', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: a0=1, insertbefore: '^alpha' }` },
  { name: 'insertafter without a match appends', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: z=1, insertafter: '^nothing' }` },
  { name: 'regexp replaces the last match', setup: file('k=1\nx\nk=2\n'), tasks: `- lineinfile: { path: $D/f, regexp: '^k=', line: k=3 }` },
  { name: 'regexp without match, insertafter', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, regexp: '^delta=', line: delta=4, insertafter: '^beta' }` },
  { name: 'absent by regexp removes every match', setup: file('t1\nkeep\nt2\n'), tasks: `- lineinfile: { path: $D/f, regexp: '^t', state: absent }` },
  { name: 'absent by line', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: alpha=1, state: absent }` },
  { name: 'absent on a missing file', tasks: `- lineinfile: { path: $D/f, line: a, state: absent }` },
  { name: 'missing file without create fails', tasks: `- lineinfile: { path: $D/f, line: a }` },
  { name: 'create with mode', tasks: `- lineinfile: { path: $D/f, line: a, create: true, mode: '0600' }` },
  { name: 'create makes missing parents', tasks: `- lineinfile: { path: $D/sub/dir/f, line: a, create: true }` },
  { name: 'empty file', setup: file(''), tasks: `- lineinfile: { path: $D/f, line: a }` },
  { name: 'no final newline, line appended', setup: file('a\nb'), tasks: `- lineinfile: { path: $D/f, line: c }` },
  { name: 'no final newline, line present', setup: file('a\nb'), tasks: `- lineinfile: { path: $D/f, line: b }` },
  { name: 'CRLF file, line present', setup: file('a\r\nb\r\n'), tasks: `- lineinfile: { path: $D/f, line: b }` },
  { name: 'CRLF file, regexp replaces', setup: file('a\r\nk=1\r\n'), tasks: `- lineinfile: { path: $D/f, regexp: '^k=', line: k=2 }` },
  { name: 'Latin-1 file keeps its bytes', setup: file(Buffer.from('caf\xe9=1\n', 'latin1')), tasks: `- lineinfile: { path: $D/f, line: tea=2 }` },
  { name: 'mode 0444 as YAML 1.1 octal', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: beta=2, mode: 0444 }` },
  { name: 'backrefs replace with groups', setup: file('port = 22\n'), tasks: `- lineinfile: { path: $D/f, regexp: '^port = (\\d+)$', line: 'port = \\1 # default', backrefs: true }` },
  { name: 'backrefs without a match changes nothing', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, regexp: '^nothing(.*)', line: 'x\\1', backrefs: true }` },
  { name: 'firstmatch with insertafter', setup: file('a\nb\na\n'), tasks: `- lineinfile: { path: $D/f, line: x, insertafter: '^a', firstmatch: true }` },
  { name: 'search_string replaces the last literal match', setup: file('x.y=1\nxzy=2\n'), tasks: `- lineinfile: { path: $D/f, search_string: 'x.y', line: x.y=9 }` },
  { name: 'search_string absent', setup: file('x.y=1\nxzy=2\n'), tasks: `- lineinfile: { path: $D/f, search_string: 'x.y', state: absent }` },
  { name: 'alias dest', setup: file(CONF), tasks: `- lineinfile: { dest: $D/f, line: gamma=3 }` },
  { name: 'alias name', setup: file(CONF), tasks: `- lineinfile: { name: $D/f, line: gamma=3 }` },
  { name: 'validate succeeds', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: gamma=3, validate: 'grep -q gamma %s' }` },
  { name: 'validate refuses', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: gamma=3, validate: 'grep -q nothing %s' }` },
  { name: 'two tasks on one file', setup: file(CONF), tasks: `- lineinfile: { path: $D/f, line: one=1 }\n- lineinfile: { path: $D/f, regexp: '^one', line: one=2 }` },
];
