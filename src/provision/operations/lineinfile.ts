import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import type { Operation } from '../types.js';
import { contentRef, fileRef, ownership, pathSchema, planFileContent } from './common.js';

export const regexSchema = z.string().min(1).refine((s) => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
}, 'a valid regular expression');

const args = z
  .strictObject({
    path: pathSchema,
    line: z.string().refine((s) => !s.includes('\n'), 'a single line (no newline)').optional(),
    regexp: regexSchema.optional(),
    state: z.enum(['present', 'absent']).default('present'),
    /** Where a new line goes when regexp matched nothing: EOF, or after the last line matching this regex. */
    insertafter: z.union([z.literal('EOF'), regexSchema]).optional(),
    /** Or before the last line matching this regex, or at BOF. */
    insertbefore: z.union([z.literal('BOF'), regexSchema]).optional(),
    /** Create the file when it does not exist (state=present). */
    create: z.boolean().default(false),
    ...ownership,
  })
  .superRefine((a, ctx) => {
    if (a.state === 'present' && a.line === undefined) ctx.addIssue({ code: 'custom', path: ['line'], message: 'required for state=present' });
    if (a.state === 'absent' && a.line === undefined && a.regexp === undefined) ctx.addIssue({ code: 'custom', path: ['regexp'], message: 'regexp or line is required for state=absent' });
    if (a.insertafter !== undefined && a.insertbefore !== undefined) ctx.addIssue({ code: 'custom', path: ['insertbefore'], message: 'use only one of insertafter and insertbefore' });
  });
export type LineinfileArgs = z.infer<typeof args>;

function lastIndex(lines: string[], re: RegExp): number {
  for (let i = lines.length - 1; i >= 0; i--) if (re.test(lines[i]!)) return i;
  return -1;
}

/** The file's lines after the edit (Ansible's lineinfile semantics), or null when nothing changes. */
export function editLines(text: string, a: LineinfileArgs): string | null {
  const endsWithNewline = text === '' || text.endsWith('\n');
  const lines = text === '' ? [] : (endsWithNewline ? text.slice(0, -1) : text).split('\n');
  const re = a.regexp !== undefined ? new RegExp(a.regexp) : undefined;
  const join = (ls: string[]) => (ls.length ? ls.join('\n') + '\n' : '');

  if (a.state === 'absent') {
    const kept = lines.filter((l) => (re ? !re.test(l) : l !== a.line));
    return kept.length === lines.length ? null : join(kept);
  }
  const line = a.line!;
  if (re) {
    // Ansible replaces the last line matching regexp.
    const i = lastIndex(lines, re);
    if (i >= 0) {
      if (lines[i] === line) return null;
      lines[i] = line;
      return join(lines);
    }
  }
  if (lines.includes(line)) return null;
  let at = lines.length;
  if (a.insertbefore === 'BOF') at = 0;
  else if (a.insertbefore !== undefined) {
    const i = lastIndex(lines, new RegExp(a.insertbefore));
    if (i >= 0) at = i;
  } else if (a.insertafter !== undefined && a.insertafter !== 'EOF') {
    const i = lastIndex(lines, new RegExp(a.insertafter));
    if (i >= 0) at = i + 1;
  }
  lines.splice(at, 0, line);
  return join(lines);
}

/**
 * Ansible's `lineinfile`: one line present (optionally replacing the last line matching
 * `regexp`) or every matching line absent. Plans a put of the whole new content.
 */
export const lineinfileOperation: Operation<LineinfileArgs> = {
  name: 'lineinfile',
  args,
  facts: (a) => [fileRef(a.path), contentRef(a.path)],
  plan(a, ctx) {
    const current = ctx.facts.get<FileState>(fileRef(a.path));
    const text = current.type === 'file' ? (ctx.facts.get<string | null>(contentRef(a.path)) ?? '') : null;
    if (text === null) {
      if (current.type === 'link') throw new Error(`${a.path} is a symbolic link to ${current.target}; edit the target's path`);
      if (current.type !== 'absent') throw new Error(`${a.path} is a ${current.type}, not a regular file`);
      if (a.state === 'absent') return { commands: [], reason: `${a.path} does not exist` };
      if (!a.create) throw new Error(`${a.path} does not exist (set create: true to create it)`);
    }
    const edited = editLines(text ?? '', a);
    const content = edited ?? text ?? '';
    const plan = planFileContent(ctx.facts, a.path, Buffer.from(content), a, ctx.wantDiff);
    if (edited === null && !plan.commands.length) {
      return { ...plan, reason: a.state === 'absent' ? `no matching line in ${a.path}` : `line present in ${a.path}` };
    }
    return plan;
  },
};
