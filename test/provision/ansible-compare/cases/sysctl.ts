import { writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

// ansible.posix's sysctl (its integration target, read for these): the file only (reload: false,
// no sysctl_set), since the live kernel parameters of this machine are not ours to change.
export const cases: CompareCase[] = [
  { name: 'new file', tasks: `- sysctl: { name: vm.swappiness, value: '10', sysctl_file: $D/s.conf, reload: false }` },
  { name: 'value in the file already', setup: (d) => writeFileSync(`${d}/s.conf`, 'vm.swappiness=10\n'), tasks: `- sysctl: { name: vm.swappiness, value: 10, sysctl_file: $D/s.conf, reload: false }` },
  { name: 'spaces around = count as the same value', setup: (d) => writeFileSync(`${d}/s.conf`, 'vm.swappiness = 10\n'), tasks: `- sysctl: { name: vm.swappiness, value: '10', sysctl_file: $D/s.conf, reload: false }` },
  { name: 'value changed: the file is rewritten key=value', setup: (d) => writeFileSync(`${d}/s.conf`, '# tuning\nkernel.pid_max = 65536\nvm.swappiness = 60\n'), tasks: `- sysctl: { name: vm.swappiness, value: '10', sysctl_file: $D/s.conf, reload: false }` },
  { name: 'repeated key', setup: (d) => writeFileSync(`${d}/s.conf`, 'vm.swappiness=60\nx.y=1\nvm.swappiness=30\n'), tasks: `- sysctl: { name: vm.swappiness, value: '10', sysctl_file: $D/s.conf, reload: false }` },
  { name: 'boolean value', tasks: `- sysctl: { name: net.ipv4.ip_forward, value: yes, sysctl_file: $D/s.conf, reload: false }` },
  { name: 'absent', setup: (d) => writeFileSync(`${d}/s.conf`, 'a.b=1\nvm.swappiness=10\n'), tasks: `- sysctl: { name: vm.swappiness, state: absent, sysctl_file: $D/s.conf, reload: false }` },
  { name: 'absent, not there', setup: (d) => writeFileSync(`${d}/s.conf`, 'a.b=1\n'), tasks: `- sysctl: { name: vm.swappiness, state: absent, sysctl_file: $D/s.conf, reload: false }` },
  { name: 'aliases key and val', tasks: `- sysctl: { key: vm.swappiness, val: '10', sysctl_file: $D/s.conf, reload: false }` },
];
