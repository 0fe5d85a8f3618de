import { createHash } from 'node:crypto';
import { serviceHelperScript } from '../../../src/provision/operations/service-helper.js';
import type { OperationCase } from './types.js';

const HELPER = '/usr/local/lib/vzsb/service.sh';
const helperInstalled = {
  [`file:${HELPER}`]: { type: 'file', mode: '0755', owner: 'root', group: 'root', size: serviceHelperScript.length, sha256: createHash('sha256').update(serviceHelperScript).digest('hex') },
};
const helperMissing = { [`file:${HELPER}`]: { type: 'absent' } };
const systemd = (active: boolean, enabled: string) => ({ 'service:vzsb-hypervisor': { manager: 'systemd', unit: true, active, enabled, pid: null } });
const fallback = (active: boolean, enabled: string) => ({ 'service:vzsb-hypervisor': { manager: 'fallback', unit: true, active, enabled, pid: active ? 42 : null } });
const OTHER = { initSystem: 'other' as const };
const sh = (script: string) => ({ kind: 'shell' as const, script });

export const cases: OperationCase[] = [
  // systemd as PID 1
  { name: 'systemd: start and enable', op: 'service', args: { name: 'vzsb-hypervisor', state: 'started', enabled: true }, facts: { ...systemd(false, 'disabled'), ...helperMissing }, commands: [sh('systemctl enable vzsb-hypervisor.service'), sh('systemctl start vzsb-hypervisor.service')], reason: 'enable, start (systemd)', effects: { 'service:vzsb-hypervisor': { manager: 'systemd', unit: true, active: true, enabled: 'enabled', pid: null } } },
  { name: 'systemd: running and enabled -> nothing', op: 'service', args: { name: 'vzsb-hypervisor.service', state: 'started', enabled: true }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [], reason: 'running, enabled' },
  { name: 'systemd: static counts as enabled', op: 'service', args: { name: 'vzsb-hypervisor', enabled: true }, facts: { ...systemd(true, 'static'), ...helperMissing }, commands: [] },
  { name: 'systemd: stop when running', op: 'service', args: { name: 'vzsb-hypervisor', state: 'stopped' }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl stop vzsb-hypervisor.service')] },
  { name: 'systemd: stopped when stopped -> nothing', op: 'service', args: { name: 'vzsb-hypervisor', state: 'stopped', enabled: false }, facts: { ...systemd(false, 'disabled'), ...helperMissing }, commands: [] },
  { name: 'systemd: restarted always restarts', op: 'service', args: { name: 'vzsb-hypervisor', state: 'restarted' }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl restart vzsb-hypervisor.service')] },
  { name: 'systemd: reloaded reloads a running service', op: 'service', args: { name: 'vzsb-hypervisor', state: 'reloaded' }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl reload vzsb-hypervisor.service')] },
  { name: 'systemd: reloaded starts a stopped service', op: 'service', args: { name: 'vzsb-hypervisor', state: 'reloaded' }, facts: { ...systemd(false, 'enabled'), ...helperMissing }, commands: [sh('systemctl start vzsb-hypervisor.service')] },
  { name: 'systemd: daemon_reload comes first', op: 'service', args: { name: 'vzsb-hypervisor', state: 'restarted', daemon_reload: true }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl daemon-reload'), sh('systemctl restart vzsb-hypervisor.service')] },
  { name: 'systemd: daemon_reload alone runs but is not a change', op: 'service', args: { name: 'vzsb-hypervisor', daemon_reload: true }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl daemon-reload')], reason: 'is unchanged' },
  { name: 'systemd: no_block queues the restart', op: 'service', args: { name: 'vzsb-hypervisor', state: 'restarted', no_block: true }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl --no-block restart vzsb-hypervisor.service')] },
  { name: 'systemd: no_block does not change enable', op: 'service', args: { name: 'vzsb-hypervisor', state: 'started', enabled: true, no_block: true }, facts: { ...systemd(false, 'disabled'), ...helperMissing }, commands: [sh('systemctl enable vzsb-hypervisor.service'), sh('systemctl --no-block start vzsb-hypervisor.service')] },
  { name: 'systemd: disable', op: 'service', args: { name: 'vzsb-hypervisor', enabled: false }, facts: { ...systemd(true, 'enabled'), ...helperMissing }, commands: [sh('systemctl disable vzsb-hypervisor.service')] },
  { name: 'systemd: masked cannot be started', op: 'service', args: { name: 'vzsb-hypervisor', state: 'started' }, facts: { ...systemd(false, 'masked'), ...helperMissing }, error: 'is masked' },
  // PID 1 is not systemd: the fallback helper
  {
    name: 'fallback: helper put once, then start and enable',
    op: 'service',
    os: OTHER,
    args: { name: 'vzsb-hypervisor', state: 'started', enabled: true },
    facts: { ...fallback(false, 'disabled'), ...helperMissing },
    commands: [sh('mkdir -p /usr/local/lib/vzsb'), { kind: 'put', path: HELPER, content: serviceHelperScript, mode: '0755', owner: 'root', group: 'root' }, sh(`${HELPER} enable vzsb-hypervisor`), sh(`${HELPER} start vzsb-hypervisor`)],
    reason: `install ${HELPER}, enable, start (fallback`,
    effects: { 'service:vzsb-hypervisor': { manager: 'fallback', unit: true, active: true, enabled: 'enabled', pid: null } },
  },
  { name: 'fallback: helper current, running, enabled -> nothing', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', state: 'started', enabled: true }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [] },
  { name: 'fallback: stop', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', state: 'stopped' }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [sh(`${HELPER} stop vzsb-hypervisor`)] },
  { name: 'fallback: restarted always restarts', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', state: 'restarted' }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [sh(`${HELPER} restart vzsb-hypervisor`)] },
  { name: 'fallback: no_block restarts in the background', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', state: 'restarted', no_block: true }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [sh(`setsid ${HELPER} restart vzsb-hypervisor </dev/null >/dev/null 2>&1 &`)] },
  { name: 'fallback: reloaded', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', state: 'reloaded' }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [sh(`${HELPER} reload vzsb-hypervisor`)] },
  { name: 'fallback: disable', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', enabled: false }, facts: { ...fallback(false, 'enabled'), ...helperInstalled }, commands: [sh(`${HELPER} disable vzsb-hypervisor`)] },
  { name: 'fallback: daemon_reload is a no-op', op: 'service', os: OTHER, args: { name: 'vzsb-hypervisor', daemon_reload: true }, facts: { ...fallback(true, 'enabled'), ...helperInstalled }, commands: [] },
  { name: 'nothing asked -> error naming state', op: 'service', args: { name: 'vzsb-hypervisor' }, error: 'state: one of state, enabled or daemon_reload' },
  { name: 'bad unit name names the field', op: 'service', args: { name: '../etc/passwd', state: 'started' }, error: 'name: a unit name' },
  { name: 'bad state names the field', op: 'service', args: { name: 'x', state: 'running' }, error: 'state' },
];
