import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

const f = (name = 'f', content = 'x\n', mode = 0o644) => (d: string) => writeFileSync(`${d}/${name}`, content, { mode });
const dir = (name = 'dir') => (d: string) => mkdirSync(`${d}/${name}`, { mode: 0o755 });

// Read from file's integration target (state_link, directory_as_dest, main: touch, absent,
// directory with parents, modes, recursion, no state) and written as our own cases.
export const cases: CompareCase[] = [
  { name: 'directory with missing parents gets the mode on each', tasks: `- file: { path: $D/a/b/c, state: directory, mode: '0700' }` },
  { name: 'directory exists, mode changed', setup: dir(), tasks: `- file: { path: $D/dir, state: directory, mode: 0750 }` },
  { name: 'directory over a file fails', setup: f(), tasks: `- file: { path: $D/f, state: directory }` },
  { name: 'absent removes a tree', setup: (d) => { dir()(d); f('dir/x')(d); }, tasks: `- file: { path: $D/dir, state: absent }` },
  { name: 'absent on nothing', tasks: `- file: { path: $D/none, state: absent }` },
  { name: 'touch creates', tasks: `- file: { path: $D/t, state: touch, mode: '0600' }` },
  { name: 'touch an existing file', setup: f(), tasks: `- file: { path: $D/f, state: touch }` },
  { name: 'state file on a missing path fails', tasks: `- file: { path: $D/none, state: file }` },
  { name: 'no state on a directory sets attributes', setup: dir(), tasks: `- file: { path: $D/dir, mode: '0711' }` },
  { name: 'no state on a missing path fails', tasks: `- file: { path: $D/none, mode: '0644' }` },
  { name: 'numeric owner 0 is idempotent', setup: f(), tasks: `- file: { path: $D/f, owner: 0, group: 0 }` },
  { name: 'symbolic mode', setup: f(), tasks: `- file: { path: $D/f, mode: 'u+x,g-r' }` },
  { name: 'symbolic mode with =', setup: f(), tasks: `- file: { path: $D/f, mode: 'u=rwx,g=rx,o=' }` },
  { name: 'link created', setup: f(), tasks: `- file: { path: $D/l, src: $D/f, state: link }` },
  { name: 'relative link', setup: f(), tasks: `- file: { path: $D/l, src: f, state: link }` },
  { name: 'link replaced when its target differs', setup: (d) => { f()(d); f('g')(d); symlinkSync(`${d}/g`, `${d}/l`); }, tasks: `- file: { path: $D/l, src: $D/f, state: link }` },
  { name: 'link over a regular file is refused', setup: (d) => { f()(d); f('l', 'keep\n')(d); }, tasks: `- file: { path: $D/l, src: $D/f, state: link }` },
  { name: 'link over a regular file with force', setup: (d) => { f()(d); f('l', 'lost\n')(d); }, tasks: `- file: { path: $D/l, src: $D/f, state: link, force: true }` },
  { name: 'dangling link is refused', tasks: `- file: { path: $D/l, src: $D/none, state: link }` },
  { name: 'dangling link with force', tasks: `- file: { path: $D/l, src: $D/none, state: link, force: true }` },
  { name: 'link over a directory is refused', setup: (d) => { f()(d); dir('l')(d); }, tasks: `- file: { path: $D/l, src: $D/f, state: link }` },
  { name: 'hard link', setup: f(), tasks: `- file: { path: $D/h, src: $D/f, state: hard }` },
  { name: 'hard link over another file is refused', setup: (d) => { f()(d); f('h', 'other\n')(d); }, tasks: `- file: { path: $D/h, src: $D/f, state: hard }` },
  { name: 'recurse sets the mode under a directory', setup: (d) => { dir()(d); f('dir/x')(d); mkdirSync(`${d}/dir/sub`); f('dir/sub/y')(d); }, tasks: `- file: { path: $D/dir, state: directory, mode: '0750', recurse: true }` },
  { name: 'alias dest', tasks: `- file: { dest: $D/a, state: directory }` },
  { name: 'mode with state link is refused', setup: f(), tasks: `- file: { path: $D/l, src: $D/f, state: link, mode: '0600' }`, refused: /refuses mode with state=link/ },
];
