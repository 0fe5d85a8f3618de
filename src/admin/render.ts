import type { FanoutReport, PoolsReport, SessionsReport } from '../api/v1/balancer.js';
import { capacityStates } from '../api/v1/hypervisor.js';
import { formatDuration, formatTime, renderTable } from './table.js';

/** Text for people from the balancer's answers (GET /v1/pools, GET /v1/sessions, resets). */
export function renderPools(report: PoolsReport): string {
  const header = ['HYPERVISOR', 'STATUS', ...capacityStates.map((s) => s.toUpperCase()), 'MAX', 'STANDBY', 'LAST SEEN'];
  const rows = report.hypervisors.map((h) => {
    const c = h.capacity;
    return [h.name, h.up ? 'up' : 'DOWN', ...capacityStates.map((s) => (c ? c[s] : '-')), c ? c.max : '-', c ? c.standby : '-', formatTime(h.lastSeen, report.time)];
  });
  const t = report.totals;
  const footer = ['total', `${report.up}/${report.up + report.down} up`, ...capacityStates.map((s) => t[s]), t.max, t.standby, ''];
  const right = header.map((_, i) => i).filter((i) => i >= 2 && i < header.length - 1);
  let text = renderTable(header, rows, { right, footer });
  for (const h of report.hypervisors) {
    if (h.error) text += `${h.name}: ${h.error.message} (${h.error.code})\n`;
  }
  return text;
}

export function renderSessions(report: SessionsReport): string {
  let text: string;
  if (report.sessions.length === 0) {
    text = 'no sessions\n';
  } else {
    const rows = report.sessions.map((s) => [
      s.user,
      s.hypervisor,
      s.container,
      s.address ?? '-',
      formatTime(s.grantedAt, report.time),
      s.lastActiveAt ? formatDuration(Date.parse(report.time) - Date.parse(s.lastActiveAt)) : '-',
      s.releasedAt ? 'released' : s.loggedIn ? 'active' : 'waiting',
    ]);
    text = renderTable(['USER', 'HYPERVISOR', 'CONTAINER', 'ADDRESS', 'SINCE', 'IDLE', 'STATE'], rows);
  }
  for (const u of report.unavailable) text += `${u.hypervisor}: not asked: ${u.error.message} (${u.error.code}); its sessions are missing above\n`;
  return text;
}

export function renderReset(report: FanoutReport): string {
  const rows = report.results.map((r) => {
    let detail = '';
    if (r.report) {
      detail = `reset ${r.report.reset.length}`;
      if (r.report.skipped.length) detail += `, skipped ${r.report.skipped.length} (${r.report.skipped.map((s) => `${s.container}${s.user ? ` ${s.user}` : ''}: ${s.reason}`).join('; ')})`;
      if (r.report.failed.length) detail += `, failed ${r.report.failed.length} (${r.report.failed.join(', ')})`;
    } else if (r.error) {
      detail = `${r.error.code}: ${r.error.message}`;
    } else if (r.status === 'no-lease') {
      detail = 'no lease for this user here';
    }
    return [r.hypervisor, r.status, detail];
  });
  let text = renderTable(['HYPERVISOR', 'RESULT', 'DETAIL'], rows);
  if (report.error) text += `${report.error.message} (${report.error.code})\n`;
  return text;
}
