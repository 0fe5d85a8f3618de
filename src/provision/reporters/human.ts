import type { HostSummary, Reporter, TaskEvent } from '../runner.js';
import { unifiedDiff } from './unified-diff.js';

export interface HumanReporterOptions {
  write: (text: string) => void;
  verbose: boolean;
  diff: boolean;
  stats: boolean;
  color: boolean;
}

const COLORS = { ok: 32, changed: 33, failed: 31, skipped: 36, unreachable: 31 } as const;

/** Ansible-like output: live lines as hosts progress, failures in full, then a recap. */
export function humanReporter(o: HumanReporterOptions): Reporter {
  const paint = (text: string, key: keyof typeof COLORS) => (o.color ? `\x1b[${COLORS[key]}m${text}\x1b[0m` : text);
  let width = 10;
  let check = false;
  return {
    runStart(info) {
      check = info.check;
      width = Math.max(10, ...info.hosts.map((h) => h.length));
      o.write(`${check ? 'CHECK' : 'DEPLOY'}: ${info.plays} play${info.plays === 1 ? '' : 's'} on ${info.hosts.length} host${info.hosts.length === 1 ? '' : 's'}${check ? ' (check mode: nothing is changed)' : ''}\n`);
    },
    hostStart() {},
    task(e: TaskEvent) {
      if ((e.status === 'ok' || e.status === 'skipped') && !o.verbose) return;
      const label = e.status === 'changed' && check ? 'would change' : e.status;
      o.write(`${e.host.padEnd(width)}  ${paint(label.padEnd(8), e.status)} ${e.handler ? 'handler: ' : ''}${e.task}${e.reason ? `  (${e.reason})` : ''}\n`);
      if (e.status === 'failed') {
        o.write(`    at ${e.file}:${e.line}\n`);
        for (const c of e.commands ?? []) o.write(`    command: ${c.split('\n').join('\n             ')}\n`);
        if (e.exitCode !== undefined) o.write(`    exit code: ${e.exitCode}\n`);
        const tail = (e.stderr ?? '').trim().split('\n').slice(-10).join('\n      ');
        if (tail) o.write(`    stderr:\n      ${tail}\n`);
      }
      if (o.diff && e.diff) for (const d of e.diff) o.write(unifiedDiff(d.before, d.after, d.path ?? e.task));
    },
    hostEnd(s: HostSummary) {
      if (s.unreachable) o.write(`${s.host.padEnd(width)}  ${paint('UNREACHABLE', 'unreachable')} ${s.error ?? ''}\n`);
      else if (s.failed && s.error) o.write(`${s.host.padEnd(width)}  ${paint('FAILED', 'failed')} ${s.error}\n`);
    },
    runEnd(hosts, info) {
      o.write(`\nRECAP${check ? ' (check mode)' : ''}\n`);
      for (const s of hosts) {
        const counts = `ok=${s.ok} changed=${s.changed} unreachable=${s.unreachable ? 1 : 0} failed=${s.failed} skipped=${s.skipped}`;
        const stats = o.stats ? `  round_trips=${s.stats.roundTrips} channels=${s.stats.channels} sent=${fmtBytes(s.stats.bytesSent)} received=${fmtBytes(s.stats.bytesReceived)} connect=${(s.stats.connectMs / 1000).toFixed(2)}s time=${(s.durationMs / 1000).toFixed(2)}s` : '';
        const color = s.unreachable ? 'unreachable' : s.failed ? 'failed' : s.changed ? 'changed' : 'ok';
        o.write(`${paint(s.host.padEnd(width), color)} : ${counts}${stats}\n`);
      }
      if (info.aborted) o.write(`\nABORTED: ${info.aborted}\n`);
      o.write(`\n${(info.durationMs / 1000).toFixed(2)}s\n`);
    },
  };
}

function fmtBytes(n: number): string {
  return n < 1024 ? `${n}B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)}KiB` : `${(n / 1024 / 1024).toFixed(1)}MiB`;
}
