import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

const FILE = '/etc/sysctl.d/99-vzsandbox.conf';
const stat = (content: string) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex') });
const file = (content: string | null) => ({ [`file:${FILE}`]: content === null ? { type: 'absent' } : stat(content), [`content:${FILE}`]: content });
const put = (content: string) => ({ kind: 'put' as const, path: FILE, content, mode: '0644', owner: 'root', group: 'root' });

export const cases: OperationCase[] = [
  { name: 'new file and live value set', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: 1 }, facts: { 'sysctl:net.ipv4.ip_forward': '0', ...file(null) }, commands: [put('net.ipv4.ip_forward = 1\n'), { kind: 'shell', script: 'sysctl -q -w net.ipv4.ip_forward=1' }], reason: 'live net.ipv4.ip_forward 0 -> 1', effects: { 'sysctl:net.ipv4.ip_forward': '1' } },
  { name: 'in the file and live -> nothing', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: '1' }, facts: { 'sysctl:net.ipv4.ip_forward': '1', ...file('# vzsandbox\nnet.ipv4.ip_forward=1\n') }, commands: [], reason: 'net.ipv4.ip_forward = 1' },
  { name: 'file right, live value differs -> sysctl -w only', op: 'sysctl', args: { name: 'net.ipv4.ip_forward', value: true }, facts: { 'sysctl:net.ipv4.ip_forward': '0', ...file('net.ipv4.ip_forward = 1\n') }, commands: [{ kind: 'shell', script: 'sysctl -q -w net.ipv4.ip_forward=1' }] },
  { name: 'live right, file differs -> file only; other lines kept', op: 'sysctl', args: { name: 'vm.swappiness', value: 10 }, facts: { 'sysctl:vm.swappiness': '10', ...file('kernel.pid_max = 65536\nvm.swappiness = 60\n') }, commands: [put('kernel.pid_max = 65536\nvm.swappiness = 10\n')] },
  { name: 'duplicate lines for the key collapse into one', op: 'sysctl', args: { name: 'vm.swappiness', value: 10 }, facts: { 'sysctl:vm.swappiness': '10', ...file('vm.swappiness = 60\nvm/swappiness=10\n') }, commands: [put('vm.swappiness = 10\n')] },
  { name: 'multi-value parameter compared without tab/space difference', op: 'sysctl', args: { name: 'net.ipv4.ip_local_port_range', value: '32768   60999' }, facts: { 'sysctl:net.ipv4.ip_local_port_range': '32768 60999', ...file('net.ipv4.ip_local_port_range = 32768 60999\n') }, commands: [] },
  { name: 'reload false: file only, no live fact read', op: 'sysctl', args: { name: 'kernel.pid_max', value: 65536, reload: false, sysctl_file: '/etc/sysctl.d/10-x.conf' }, facts: { 'file:/etc/sysctl.d/10-x.conf': { type: 'absent' }, 'content:/etc/sysctl.d/10-x.conf': null }, commands: [{ kind: 'put', path: '/etc/sysctl.d/10-x.conf', content: 'kernel.pid_max = 65536\n', mode: '0644', owner: 'root', group: 'root' }] },
  { name: 'key missing live (module not loaded yet) is still set', op: 'sysctl', args: { name: 'net.bridge.bridge-nf-call-iptables', value: 0 }, facts: { 'sysctl:net.bridge.bridge-nf-call-iptables': null, ...file('net.bridge.bridge-nf-call-iptables = 0\n') }, commands: [{ kind: 'shell', script: 'sysctl -q -w net.bridge.bridge-nf-call-iptables=0' }], reason: 'not present when facts were read' },
  { name: 'absent removes the line, live untouched', op: 'sysctl', args: { name: 'vm.swappiness', state: 'absent' }, facts: file('kernel.pid_max = 65536\nvm.swappiness = 10\n'), commands: [put('kernel.pid_max = 65536\n')] },
  { name: 'absent when not in the file -> nothing', op: 'sysctl', args: { name: 'vm.swappiness', state: 'absent' }, facts: file(null), commands: [] },
  { name: 'value required for present', op: 'sysctl', args: { name: 'vm.swappiness' }, error: 'value: required for state=present' },
  { name: 'bad name names the field', op: 'sysctl', args: { name: 'vm swappiness', value: 1 }, error: 'name: a kernel parameter' },
  { name: 'relative sysctl_file rejected', op: 'sysctl', args: { name: 'vm.swappiness', value: 1, sysctl_file: 'x.conf' }, error: 'sysctl_file: .*absolute path' },
];
