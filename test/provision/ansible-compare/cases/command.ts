import { writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

// Read from command_shell's integration target (no shell for command, creates/removes globs,
// chdir, check mode, stdin, executable) and written as our own cases.
export const cases: CompareCase[] = [
  { name: 'command runs no shell', tasks: `- command: { cmd: "touch $D/a > $D/out", chdir: $D }` },
  { name: 'shell runs the line by sh', tasks: `- shell: { cmd: "echo hi > $D/out" }` },
  { name: 'creates exists (glob)', setup: (d) => writeFileSync(`${d}/x.done`, ''), tasks: `- command: { cmd: "touch $D/ran", creates: "$D/*.done" }` },
  { name: 'creates missing', tasks: `- command: { cmd: "touch $D/ran", creates: "$D/ran" }` },
  { name: 'creates relative to chdir', setup: (d) => writeFileSync(`${d}/marker`, ''), tasks: `- command: { cmd: "touch ran", chdir: $D, creates: marker }` },
  { name: 'removes missing', tasks: `- command: { cmd: "touch $D/ran", removes: "$D/nothing*" }` },
  { name: 'removes exists', setup: (d) => writeFileSync(`${d}/old`, ''), tasks: `- command: { cmd: "rm $D/old", removes: "$D/old" }` },
  { name: 'free form with creates', tasks: `- command: touch $D/ran creates=$D/ran` },
  { name: 'failing command', tasks: `- command: "false"` },
  { name: 'stdin', tasks: `- shell: { cmd: "cat > $D/in", stdin: "text" }` },
  { name: 'shell with executable', tasks: `- shell: { cmd: "echo $BASH_VERSION | cut -c1 > $D/v", executable: /bin/bash }` },
  { name: 'argv', tasks: `- command: { argv: [touch, "$D/a b"] }` },
  { name: 'changed_when false', tasks: `- command: { cmd: "true" }\n  changed_when: false` },
];
