import { z } from 'zod';
import { bytesText, textBytes, type FileState } from '../facts/file.js';
import { base64Heredoc, quote } from '../shell.js';
import type { Command, FactRef, Operation, Plan } from '../types.js';
import { backupCommand, contentRef, fileRef, planFileContent, withAliases } from './common.js';

const field = z
  .union([z.string(), z.number().int().min(0)])
  .transform(String)
  .refine((s) => /^[A-Za-z0-9*,/-]+$/.test(s), 'a cron field like "*/15", "1-5" or "mon" (vzsb refuses spaces, which would shift the fields)');

const args = withAliases(
  z
    .strictObject({
      /** Identifies the entry: the "#Ansible: <name>" marker line above it (an env variable's name with env). */
      name: z.string().min(1).refine((s) => !s.includes('\n'), 'a single line'),
      /**
       * A file instead of a user's crontab: a name in /etc/cron.d or an absolute path. In
       * /etc/cron.d vzsb refuses names cron skips (Ansible only warns).
       */
      cron_file: z
        .string()
        .min(1)
        .refine((s) => s !== '/etc/crontab', 'vzsb, like Ansible, will not manage /etc/crontab through cron_file')
        .transform((s) => (s.startsWith('/') ? s : `/etc/cron.d/${s}`))
        .refine(
          (s) => !s.startsWith('/etc/cron.d/') || /^[A-Za-z0-9_-]+$/.test(s.slice('/etc/cron.d/'.length)),
          'a file name in /etc/cron.d of letters, digits, "_" and "-" only: cron skips other names (Ansible only warns; vzsb refuses)',
        )
        .optional(),
      /** The crontab's user (no cron_file), or the user field of a cron_file entry. Default: root. */
      user: z.string().regex(/^[a-z_][a-z0-9_.-]*\$?$/, 'a user name').optional(),
      minute: field.default('*'),
      hour: field.default('*'),
      day: field.default('*'),
      month: field.default('*'),
      weekday: field.default('*'),
      special_time: z.enum(['reboot', 'yearly', 'annually', 'monthly', 'weekly', 'daily', 'hourly']).optional(),
      job: z.string().min(1).optional(),
      /** Keep the entry but commented out. */
      disabled: z.boolean().default(false),
      /** The entry is an environment variable `name="job"` instead of a job. */
      env: z.boolean().default(false),
      insertafter: z.string().optional(),
      insertbefore: z.string().optional(),
      backup: z.boolean().default(false),
      state: z.enum(['present', 'absent']).default('present'),
    })
    .superRefine((a, ctx) => {
      if (a.state === 'present' && a.job === undefined) ctx.addIssue({ code: 'custom', path: ['job'], message: 'required for state=present' });
      if (a.special_time && [a.minute, a.hour, a.day, a.month, a.weekday].some((f) => f !== '*')) {
        ctx.addIssue({ code: 'custom', path: ['special_time'], message: 'give either the time and date fields or special_time' });
      }
      if (a.state === 'present' && (a.insertafter !== undefined || a.insertbefore !== undefined) && !a.env) {
        ctx.addIssue({ code: 'custom', path: ['insertafter'], message: 'insertafter and insertbefore are valid only with env: true' });
      }
      if (a.insertafter !== undefined && a.insertbefore !== undefined) ctx.addIssue({ code: 'custom', path: ['insertbefore'], message: 'use only one of insertafter and insertbefore' });
      if (a.backup && a.cron_file === undefined) ctx.addIssue({ code: 'custom', path: ['backup'], message: 'vzsb backs up cron_file files only (Ansible leaves a user crontab\'s copy in a temporary file)' });
      if (a.env && a.name.includes(' ')) ctx.addIssue({ code: 'custom', path: ['name'], message: 'an environment variable name has no spaces' });
    }),
  { value: 'job', dom: 'day', dow: 'weekday' },
);
export type CronArgs = z.infer<typeof args>;

const MARKER = '#Ansible: ';
const OLD_MARKER = '#vzsb: ';
const escapeRe = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Python's str.splitlines for the line breaks a crontab can hold. */
function splitLines(text: string): string[] {
  if (text === '') return [];
  const lines = text.split(/\r\n|\r|\n/);
  if (/(\r\n|\r|\n)$/.test(text)) lines.pop();
  return lines;
}

function jobLine(a: CronArgs, withUser: boolean): string {
  const job = textBytes(a.job!.replace(/^[\r\n]+|[\r\n]+$/g, ''));
  const user = withUser ? ` ${a.user ?? 'root'}` : '';
  const when = a.special_time ? `@${a.special_time}` : [a.minute, a.hour, a.day, a.month, a.weekday].join(' ');
  return `${a.disabled ? '#' : ''}${when}${user} ${job}`;
}

/** Ansible's find_job: by the marker, else by the exact job line (which then gets a marker). */
function findJob(lines: string[], name: string, job?: string): string[] {
  let comment: string | null = null;
  for (const l of lines) {
    if (comment !== null) {
      if (comment === name) return [comment, l];
      comment = null;
    } else if (l.startsWith(MARKER)) comment = l.slice(MARKER.length);
  }
  if (job !== undefined) {
    for (let i = 0; i < lines.length; i++) {
      if (lines[i] !== job) continue;
      const prev = lines.at(i - 1) ?? '';
      if (!prev.startsWith(MARKER)) {
        lines.splice(i, 0, MARKER + name);
        return [lines[i]!, job, 'adopted'];
      }
      if (name && prev === `${MARKER}None`) {
        lines[i - 1] = MARKER + name;
        return [lines[i - 1]!, job, 'adopted'];
      }
    }
  }
  return [];
}

/** Ansible's _update_job: the marker's next line replaced (job) or both removed (null). */
function updateJob(lines: string[], name: string, job: string | null): string[] {
  const out: string[] = [];
  let comment: string | null = null;
  for (const l of lines) {
    if (comment !== null) {
      if (job !== null) out.push(comment, job);
      comment = null;
    } else if (l === MARKER + name) comment = l;
    else out.push(l);
  }
  return out;
}

export interface CronEdit {
  /** The rendered crontab, as Ansible's render(). */
  text: string;
  changed: boolean;
  /** state=absent emptied a cron_file: Ansible removes the file. */
  removeFile: boolean;
}

/** Ansible 2.14's cron module on a crontab's text (bytes as latin1). */
export function editCrontab(existing: string, a: CronArgs, isFile: boolean): CronEdit {
  let lines = splitLines(existing);
  // Entries earlier vzsb versions marked "#vzsb: <name>" become Ansible's markers, not duplicates.
  let changed = lines.some((l) => l.startsWith(OLD_MARKER));
  lines = lines.map((l) => (l.startsWith(OLD_MARKER) ? MARKER + l.slice(OLD_MARKER.length) : l));
  const name = textBytes(a.name);
  const present = a.state === 'present';
  if (a.env) {
    const decl = `${name}="${textBytes(a.job ?? '')}"`;
    const re = new RegExp(`^${escapeRe(name)}=`);
    const old = lines.findIndex((l) => re.test(l));
    if (present) {
      if (old < 0) {
        const other = a.insertafter ?? a.insertbefore;
        if (other === undefined) lines.unshift(decl);
        else {
          const at = lines.findIndex((l) => new RegExp(`^${escapeRe(textBytes(other))}=`).test(l));
          if (at < 0) throw new Error(`cron: variable named '${other}' not found`);
          lines.splice(a.insertafter !== undefined ? at + 1 : at, 0, decl);
        }
        changed = true;
      } else if (lines[old] !== decl) {
        lines = lines.map((l) => (re.test(l) ? decl : l));
        changed = true;
      }
    } else if (old >= 0) {
      lines = lines.filter((l) => !re.test(l));
      changed = true;
    }
  } else if (present) {
    const job = jobLine(a, isFile);
    const old = findJob(lines, name, job);
    if (old.length === 0) {
      lines.push(MARKER + name, job);
      changed = true;
    }
    if ((old.length > 0 && old[1] !== job) || old.length > 2) {
      lines = updateJob(lines, name, job);
      changed = true;
    }
  } else if (findJob(lines, name).length > 0) {
    lines = updateJob(lines, name, null);
    changed = true;
    if (isFile && lines.every((l) => !l.trim())) return { text: '', changed: true, removeFile: true };
  }
  // an existing crontab without a final newline gets one
  if (!changed && existing !== '' && !/[\r\n]$/.test(existing)) changed = true;
  let text = lines.join('\n');
  if (text) text = text.replace(/[\r\n]+$/, '') + '\n';
  return { text, changed, removeFile: false };
}

const crontabRef = (user: string): FactRef => ({ fact: 'crontab', arg: user });

/**
 * Ansible's `cron`: entries marked "#Ansible: <name>" (exactly as Ansible writes them, so either
 * tool finds the other's entries) in a user's crontab or in a cron_file, and environment
 * variables with env. A cron_file emptied by state=absent is removed.
 */
export const cronOperation: Operation<CronArgs> = {
  name: 'cron',
  args,
  facts: (a) => (a.cron_file ? [fileRef(a.cron_file), contentRef(a.cron_file)] : [crontabRef(a.user ?? 'root')]),
  plan(a, ctx) {
    if (!a.cron_file) return planUserCrontab(a, ctx.facts.get<Buffer | null>(crontabRef(a.user ?? 'root')));
    const path = a.cron_file;
    const current = ctx.facts.get<FileState>(fileRef(path));
    if (current.type !== 'file' && current.type !== 'absent') throw new Error(`${path} is a ${current.type}, not a regular file`);
    const before = current.type === 'file' ? bytesText(ctx.facts.get<Buffer | null>(contentRef(path)) ?? Buffer.alloc(0)) : '';
    const edit = editCrontab(before, a, true);
    const what = a.env ? `variable ${a.name}` : `entry "${a.name}"`;
    if (!edit.changed) return { commands: [], reason: `${what} in ${path} is up to date` };
    if (edit.removeFile) {
      return {
        commands: current.type === 'file' ? [...(a.backup ? [backupCommand(path)] : []), { kind: 'shell', script: `rm -f -- ${quote(path)}` }] : [],
        reason: `remove ${what} and the then empty ${path}`,
        ...(ctx.wantDiff ? { diff: [{ path, before: Buffer.from(before, 'latin1').toString('utf8'), after: '' }] } : {}),
        effects: [
          [fileRef(path), { type: 'absent' }],
          [contentRef(path), null],
        ],
      };
    }
    // Ansible rewrites the file in place: a new one is 0644 root (umask 022), an existing one keeps its mode.
    const plan = planFileContent(ctx.facts, path, Buffer.from(edit.text, 'latin1'), { backup: a.backup }, ctx.wantDiff);
    if (!plan.commands.length) {
      // same bytes but Ansible still counts it (a final newline only it would add): rewrite
      return { commands: [{ kind: 'shell', script: `touch -- ${quote(path)}` }], reason: `rewrite ${path}`, effects: plan.effects };
    }
    return { ...plan, reason: `${a.state === 'absent' ? 'remove' : 'set'} ${what} in ${path}` };
  },
};

function planUserCrontab(a: CronArgs, current: Buffer | null): Plan {
  const user = a.user ?? 'root';
  const before = current === null ? '' : bytesText(current);
  const edit = editCrontab(before, a, false);
  const what = a.env ? `variable ${a.name}` : `entry "${a.name}"`;
  if (!edit.changed) return { commands: [], reason: `${what} in the crontab of ${user} is up to date` };
  const content = Buffer.from(edit.text, 'latin1');
  const commands: Command[] = [{ kind: 'shell', script: base64Heredoc(`base64 -d | crontab -u ${quote(user)} -`, content) }];
  return {
    commands,
    reason: `${a.state === 'absent' ? 'remove' : 'set'} ${what} in the crontab of ${user}`,
    effects: [[crontabRef(user), content]],
  };
}
