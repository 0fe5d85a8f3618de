/**
 * Plain-text tables for people: columns padded to the widest cell, numbers right-aligned,
 * a header line, no colours (the output is often piped or pasted into a chat).
 */
export type Cell = string | number;

export interface TableOptions {
  /** Columns aligned right; by default every column whose cells are all numbers. */
  right?: readonly number[];
  /** A line under the header and before `footer`. */
  rule?: boolean;
  footer?: readonly Cell[];
}

export function renderTable(header: readonly string[], rows: readonly (readonly Cell[])[], options: TableOptions = {}): string {
  const all = [header, ...rows, ...(options.footer ? [options.footer] : [])].map((r) => r.map((c) => String(c)));
  const widths = header.map((_, i) => Math.max(...all.map((r) => (r[i] ?? '').length)));
  const right = new Set(options.right ?? header.map((_, i) => i).filter((i) => rows.length > 0 && rows.every((r) => typeof r[i] === 'number')));
  const line = (cells: readonly string[]) =>
    cells
      .map((c, i) => (right.has(i) ? c.padStart(widths[i]!) : i === cells.length - 1 ? c : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  const rule = widths.map((w) => '-'.repeat(w)).join('  ');
  const out = [line(all[0]!)];
  if (options.rule !== false) out.push(rule);
  for (const r of all.slice(1, 1 + rows.length)) out.push(line(r));
  if (options.footer) {
    out.push(rule);
    out.push(line(all[all.length - 1]!));
  }
  return out.join('\n') + '\n';
}

/** "45s", "12m05s", "3h04m", "2d03h": how long ago, for a person. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '-';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`;
  const h = Math.floor(m / 60);
  if (h < 24) return `${h}h${String(m % 60).padStart(2, '0')}m`;
  return `${Math.floor(h / 24)}d${String(h % 24).padStart(2, '0')}h`;
}

/** An ISO time as "HH:MM:SS" (UTC) when it is on `reference`'s day, else "YYYY-MM-DD HH:MM". */
export function formatTime(iso: string | null, reference: string): string {
  if (!iso) return '-';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  const text = d.toISOString();
  return text.slice(0, 10) === reference.slice(0, 10) ? text.slice(11, 19) : `${text.slice(0, 10)} ${text.slice(11, 16)}`;
}
