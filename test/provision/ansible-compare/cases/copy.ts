import { mkdirSync, writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

// Read from copy's integration target (content, dest a directory, dest_in_non_existent_directories,
// force, modes, check_mode, remote_src) and written as our own cases.
export const cases: CompareCase[] = [
  { name: 'content to a new file', tasks: `- copy: { dest: $D/f, content: "hello\\n" }` },
  { name: 'content with mode', tasks: `- copy: { dest: $D/f, content: "hello\\n", mode: 0600 }` },
  { name: 'same content', setup: (d) => writeFileSync(`${d}/f`, 'hello\n'), tasks: `- copy: { dest: $D/f, content: "hello\\n" }` },
  { name: 'new content keeps the mode', setup: (d) => writeFileSync(`${d}/f`, 'old\n', { mode: 0o600 }), tasks: `- copy: { dest: $D/f, content: "new\\n" }` },
  { name: 'force false keeps an existing file', setup: (d) => writeFileSync(`${d}/f`, 'old\n'), tasks: `- copy: { dest: $D/f, content: "new\\n", force: false }` },
  { name: 'symbolic mode', tasks: `- copy: { dest: $D/f, content: "x", mode: "u=rw,g=r,o=" }` },
  { name: 'onto a directory fails (content)', setup: (d) => mkdirSync(`${d}/dir`), tasks: `- copy: { dest: $D/dir, content: "x" }` },
  { name: 'remote_src into a new file', setup: (d) => writeFileSync(`${d}/src`, 'from the host\n', { mode: 0o600 }), tasks: `- copy: { src: $D/src, dest: $D/f, remote_src: true }` },
  { name: 'remote_src into a directory', setup: (d) => { writeFileSync(`${d}/src`, 'x\n'); mkdirSync(`${d}/dir`); }, tasks: `- copy: { src: $D/src, dest: $D/dir/, remote_src: true }` },
  { name: 'remote_src into a missing dir/', setup: (d) => writeFileSync(`${d}/src`, 'x\n'), tasks: `- copy: { src: $D/src, dest: $D/new/, remote_src: true }` },
  { name: 'validate refuses', tasks: `- copy: { dest: $D/f, content: "x", validate: "grep -q y %s" }` },
];
