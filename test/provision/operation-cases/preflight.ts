import type { OperationCase } from './types.js';

const ok = (id: string) => ({ id, title: id, ok: true, detail: 'present', fix: 'nothing' });
const missing = { id: 'kernel.overlay', title: 'overlay filesystem', ok: false, detail: 'overlay: not in /proc/filesystems and no module', fix: 'modprobe overlay' };

export const cases: OperationCase[] = [
  { name: 'every check passed -> nothing to do', op: 'preflight', args: { role: 'hypervisor' }, facts: { 'preflight:hypervisor': [ok('kernel.veth'), ok('kernel.bridge')] }, commands: [], reason: '2 checks passed' },
  {
    name: 'a failed check fails planning, naming what provides it',
    op: 'preflight',
    args: { role: 'hypervisor' },
    facts: { 'preflight:hypervisor': [ok('kernel.veth'), missing] },
    error: 'pre-flight failed, nothing was changed: kernel.overlay \\(overlay filesystem\\): overlay: not in /proc/filesystems and no module; fix: modprobe overlay',
  },
  { name: 'a skipped check does not count', op: 'preflight', args: { role: 'hypervisor', skip: ['kernel.overlay'] }, facts: { 'preflight:hypervisor': [ok('kernel.veth'), missing] }, commands: [], reason: '1 check passed' },
  { name: 'several roles in one fact', op: 'preflight', args: { role: ['balancer', 'gateway'] }, facts: { 'preflight:balancer,gateway': [ok('kernel.nftables')] }, commands: [] },
  { name: 'an unknown role is refused', op: 'preflight', args: { role: 'web' }, error: 'role' },
];
