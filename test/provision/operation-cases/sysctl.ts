import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

// ansible.posix's sysctl: the file rewritten as key=value lines, `sysctl -p file` (reload) when
// something changed or the live value differs, `sysctl -w` only with sysctl_set.
const FILE = '/etc/sysctl.d/60-vzsandbox.conf';
const stat = (content: string) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') });
const file = (content: string | null) => ({ [`file:${FILE}`]: content === null ? { type: 'absent' } : stat(content), [`content:${FILE}`]: content === null ? null : Buffer.from(content) });
const put = (content: string) => ({ kind: 'put' as const, path: FILE, content, mode: '0644', owner: 'root', group: 'root' });
const reload = { kind: 'shell' as const, script: `sysctl -p ${FILE} >/dev/null` };
const live = (name: string, value: string | null) => ({ [`sysctl:${name}`]: value });

export const cases: OperationCase[] = [
  { name: 'new file, then reload', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: 1, sysctl_file: FILE }, facts: { ...live('net.ipv4.ip_forward', '0'), ...file(null) }, commands: [put('net.ipv4.ip_forward=1\n'), reload], effects: { 'sysctl:net.ipv4.ip_forward': '1' } },
  { name: 'in the file and live -> nothing', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: '1', sysctl_file: FILE }, facts: { ...live('net.ipv4.ip_forward', '1'), ...file('# vzsandbox\nnet.ipv4.ip_forward = 1\n') }, commands: [], reason: 'net.ipv4.ip_forward = 1' },
  { name: 'file right, live value differs -> reload only', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: true, sysctl_file: FILE }, facts: { ...live('net.ipv4.ip_forward', '0'), ...file('net.ipv4.ip_forward=1\n') }, commands: [reload] },
  { name: 'yes/no words are 1 and 0', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: 'yes', sysctl_file: FILE }, facts: { ...live('net.ipv4.ip_forward', '1'), ...file('net.ipv4.ip_forward=1\n') }, commands: [] },
  { name: 'file differs: every line rewritten as key=value, comments kept', op: 'sysctl', args: { name: 'vm.swappiness', value: 10, sysctl_file: FILE }, facts: { ...live('vm.swappiness', '10'), ...file('# tuning\nkernel.pid_max = 65536\n  vm.swappiness = 60\n') }, commands: [put('# tuning\nkernel.pid_max=65536\nvm.swappiness=10\n'), reload] },
  { name: 'a repeated key is kept once, at its first place', op: 'sysctl', args: { name: 'vm.swappiness', value: 10, sysctl_file: FILE }, facts: { ...live('vm.swappiness', '10'), ...file('vm.swappiness = 60\nx=1\nvm.swappiness=30\n') }, commands: [put('vm.swappiness=10\nx=1\n'), reload] },
  { name: 'multi-value parameter: live compared word by word', op: 'sysctl', args: { name: 'net.ipv4.ip_local_port_range', value: '32768 60999', sysctl_file: FILE }, facts: { ...live('net.ipv4.ip_local_port_range', '32768 60999'), ...file('net.ipv4.ip_local_port_range = 32768 60999\n') }, commands: [] },
  { name: 'reload false: file only', op: 'sysctl', args: { name: 'kernel.pid_max', value: 65536, reload: false, sysctl_file: '/etc/sysctl.d/10-x.conf' }, facts: { ...live('kernel.pid_max', '4194304'), 'file:/etc/sysctl.d/10-x.conf': { type: 'absent' }, 'content:/etc/sysctl.d/10-x.conf': null }, commands: [{ kind: 'put', path: '/etc/sysctl.d/10-x.conf', content: 'kernel.pid_max=65536\n', mode: '0644', owner: 'root', group: 'root' }] },
  { name: 'sysctl_set: live value set with sysctl -w', op: 'sysctl', args: { name: 'vm.swappiness', value: 10, sysctl_set: true, reload: false, sysctl_file: FILE }, facts: { ...live('vm.swappiness', '60'), ...file('vm.swappiness=10\n') }, commands: [{ kind: 'shell', script: 'sysctl -w vm.swappiness=10 >/dev/null' }] },
  { name: 'ignoreerrors: sysctl -e', op: 'sysctl', args: { name: 'net.bridge.bridge-nf-call-iptables', value: 0, ignoreerrors: true, sysctl_file: FILE }, facts: { ...live('net.bridge.bridge-nf-call-iptables', null), ...file('net.bridge.bridge-nf-call-iptables=0\n') }, commands: [{ kind: 'shell', script: `sysctl -e -p ${FILE} >/dev/null` }] },
  { name: 'absent removes the line', op: 'sysctl', args: { name: 'vm.swappiness', state: 'absent', sysctl_file: FILE }, facts: { ...live('vm.swappiness', '10'), ...file('kernel.pid_max = 65536\nvm.swappiness = 10\n') }, commands: [put('kernel.pid_max=65536\n'), reload] },
  { name: 'absent when not in the file -> nothing', op: 'sysctl', args: { name: 'vm.swappiness', state: 'absent', sysctl_file: FILE }, facts: { ...live('vm.swappiness', '10'), ...file(null) }, commands: [] },
  { name: 'default file is /etc/sysctl.conf, as in Ansible', op: 'sysctl', args: { name: 'vm.swappiness', value: 10 }, facts: { ...live('vm.swappiness', '10'), 'file:/etc/sysctl.conf': stat('vm.swappiness=10\n'), 'content:/etc/sysctl.conf': Buffer.from('vm.swappiness=10\n') }, commands: [] },
  { name: 'aliases key and val', op: 'sysctl', args: { key: 'vm.swappiness', val: 10, sysctl_file: FILE }, facts: { ...live('vm.swappiness', '10'), ...file('vm.swappiness=10\n') }, commands: [] },
  { name: 'value required for present', op: 'sysctl', args: { name: 'vm.swappiness' }, error: 'value: required for state=present' },
  { name: 'bad name names the field', op: 'sysctl', args: { name: 'vm swappiness', value: 1 }, error: 'name: a kernel parameter' },
  { name: 'relative sysctl_file rejected', op: 'sysctl', args: { name: 'vm.swappiness', value: 1, sysctl_file: 'x.conf' }, error: 'sysctl_file: .*absolute path' },
];
