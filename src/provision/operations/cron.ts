import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Operation } from '../types.js';
import { contentRef, fileRef, planFileContent } from './common.js';

const field = z
  .union([z.string(), z.number().int().min(0)])
  .transform(String)
  .refine((s) => /^[A-Za-z0-9*,/-]+$/.test(s), 'a cron field like "*/15", "1-5" or "mon"');

const args = z
  .strictObject({
    /** Identifies the entry: the "#vzsb: <name>" marker line above it. */
    name: z.string().min(1).refine((s) => !s.includes('\n'), 'a single line'),
    /** A file in /etc/cron.d: a bare name ("vzsb-reclaim") or its absolute path. */
    cron_file: z
      .string()
      .transform((s) => s.replace(/^\/etc\/cron\.d\//, ''))
      .refine((s) => /^[A-Za-z0-9_-]+$/.test(s), 'a file name in /etc/cron.d (letters, digits, "_" and "-" only: cron skips other names)'),
    user: z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/, 'a user name').default('root'),
    minute: field.default('*'),
    hour: field.default('*'),
    day: field.default('*'),
    month: field.default('*'),
    weekday: field.default('*'),
    special_time: z.enum(['reboot', 'yearly', 'annually', 'monthly', 'weekly', 'daily', 'hourly']).optional(),
    job: z.string().min(1).refine((s) => !s.includes('\n'), 'a single line').optional(),
    /** Keep the entry but commented out. */
    disabled: z.boolean().default(false),
    state: z.enum(['present', 'absent']).default('present'),
  })
  .superRefine((a, ctx) => {
    if (a.state === 'present' && a.job === undefined) ctx.addIssue({ code: 'custom', path: ['job'], message: 'required for state=present' });
  });
export type CronArgs = z.infer<typeof args>;

const MARKER = '#vzsb: ';

function entryLine(a: CronArgs): string {
  const when = a.special_time ? `@${a.special_time}` : [a.minute, a.hour, a.day, a.month, a.weekday].join(' ');
  return `${a.disabled ? '#' : ''}${when} ${a.user} ${a.job}`;
}

/** The file's content with the named entry set (line) or removed (null). */
export function editCronEntries(text: string, name: string, line: string | null): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const at = lines.indexOf(MARKER + name);
  if (at >= 0) lines.splice(at, 2, ...(line === null ? [] : [MARKER + name, line]));
  else if (line !== null) lines.push(MARKER + name, line);
  return lines.length ? lines.join('\n') + '\n' : '';
}

/**
 * Ansible's `cron` for /etc/cron.d files: each entry is a "#vzsb: <name>" marker line and the
 * entry below it, so several entries share a file. A file left empty is removed.
 */
export const cronOperation: Operation<CronArgs> = {
  name: 'cron',
  args,
  facts: (a) => [fileRef(`/etc/cron.d/${a.cron_file}`), contentRef(`/etc/cron.d/${a.cron_file}`)],
  plan(a, ctx) {
    const path = `/etc/cron.d/${a.cron_file}`;
    const current = ctx.facts.get<FileState>(fileRef(path));
    if (current.type !== 'file' && current.type !== 'absent') throw new Error(`${path} is a ${current.type}, not a regular file`);
    const text = current.type === 'file' ? (ctx.facts.get<string | null>(contentRef(path)) ?? '') : '';
    const next = editCronEntries(text, a.name, a.state === 'present' ? entryLine(a) : null);
    if (a.state === 'absent') {
      if (next === text) return { commands: [], reason: `no entry "${a.name}" in ${path}` };
      if (next === '') {
        return {
          commands: [{ kind: 'shell', script: `rm -f -- ${quote(path)}` }],
          reason: `remove entry "${a.name}" and the then empty ${path}`,
          ...(ctx.wantDiff ? { diff: [{ path, before: text, after: '' }] } : {}),
          effects: [
            [fileRef(path), { type: 'absent' }],
            [contentRef(path), null],
          ],
        };
      }
    }
    // cron ignores files in cron.d that are group or world writable: always 0644 root.
    const plan = planFileContent(ctx.facts, path, Buffer.from(next), { mode: '0644', owner: 'root', group: 'root' }, ctx.wantDiff);
    if (next === text && plan.commands.length === 0) return { ...plan, reason: `entry "${a.name}" in ${path} is up to date` };
    return { ...plan, reason: `${a.state === 'absent' ? 'remove' : 'set'} entry "${a.name}" in ${path}${next === text ? ' (attributes)' : ''}` };
  },
};
