import { z } from 'zod';
import { bytesText, textBytes, type FileState } from '../facts/file.js';
import type { Operation } from '../types.js';
import { contentRef, fileRef, ownership, pathSchema, planFileContent, validateSchema, withAliases } from './common.js';

/** Python's `re` syntax that JS spells differently: named groups, \A and \Z. */
export function pythonRegex(source: string): string {
  return source.replace(/\(\?P</g, '(?<').replace(/\(\?P=(\w+)\)/g, '\\k<$1>').replace(/\\A/g, '^').replace(/\\Z/g, '$(?![\\s\\S])');
}

export const regexSchema = z.string().min(1).refine((s) => {
  try {
    new RegExp(pythonRegex(s));
    return true;
  } catch {
    return false;
  }
}, 'a valid regular expression');

const args = withAliases(
  z
    .strictObject({
      path: pathSchema,
      line: z.string().refine((s) => !s.includes('\n'), 'a single line (no newline)').optional(),
      regexp: regexSchema.optional(),
      /** A literal string instead of a regexp. */
      search_string: z.string().min(1).optional(),
      state: z.enum(['present', 'absent']).default('present'),
      /** Where a new line goes when nothing matched: EOF, or after the last line matching this regex. */
      insertafter: z.union([z.literal('EOF'), regexSchema]).optional(),
      /** Or before the last line matching this regex, or at BOF. */
      insertbefore: z.union([z.literal('BOF'), regexSchema]).optional(),
      /** The first match (of regexp, search_string, insertafter/insertbefore) counts instead of the last. */
      firstmatch: z.boolean().default(false),
      /** `line` may use the regexp's groups (\1, \g<name>); no match leaves the file alone. */
      backrefs: z.boolean().default(false),
      /** Create the file (and its missing parent directories) when it does not exist. */
      create: z.boolean().default(false),
      backup: z.boolean().default(false),
      validate: validateSchema,
      ...ownership,
    })
    .superRefine((a, ctx) => {
      if (a.state === 'present' && a.line === undefined) ctx.addIssue({ code: 'custom', path: ['line'], message: 'required for state=present' });
      if (a.state === 'absent' && a.line === undefined && a.regexp === undefined && a.search_string === undefined) {
        ctx.addIssue({ code: 'custom', path: ['regexp'], message: 'one of line, regexp or search_string is required for state=absent' });
      }
      if (a.insertafter !== undefined && a.insertbefore !== undefined) ctx.addIssue({ code: 'custom', path: ['insertbefore'], message: 'use only one of insertafter and insertbefore' });
      if (a.regexp !== undefined && a.search_string !== undefined) ctx.addIssue({ code: 'custom', path: ['search_string'], message: 'use only one of regexp and search_string' });
      if (a.backrefs && a.regexp === undefined) ctx.addIssue({ code: 'custom', path: ['backrefs'], message: 'backrefs needs regexp' });
    }),
  { dest: 'path', destfile: 'path', name: 'path' },
);
export type LineinfileArgs = z.infer<typeof args>;

/** Python's readlines on bytes: lines keep their "\n". */
function readLines(bytes: string): string[] {
  return bytes.match(/[^\n]*\n|[^\n]+$/g) ?? [];
}

/** Python's `re.search` on a line: `$` also matches before the line's final "\n". */
function search(re: RegExp, line: string): RegExpExecArray | null {
  return re.exec(line.endsWith('\n') ? line.slice(0, -1) : line);
}

const stripEol = (l: string) => l.replace(/[\r\n]+$/, '');

/** Python's match.expand: \1, \g<1>, \g<name>, and the usual escapes. Unmatched groups are empty. */
function expand(m: RegExpExecArray, template: string): string {
  return template.replace(/\\(?:g<(\w+)>|(\d{1,2})|(.))/g, (whole, name: string | undefined, num: string | undefined, esc: string | undefined) => {
    if (name !== undefined) return (/^\d+$/.test(name) ? m[Number(name)] : m.groups?.[name]) ?? '';
    if (num !== undefined) return m[Number(num)] ?? '';
    const escapes: Record<string, string> = { n: '\n', t: '\t', r: '\r', '\\': '\\', a: '\x07', f: '\f', v: '\v', b: '\b' };
    return escapes[esc!] ?? whole;
  });
}

/**
 * The file's lines after Ansible 2.14's lineinfile, on bytes (a latin1 string: one code unit per
 * byte), or null when nothing changes. Ported from its present() and absent(), branch by branch.
 */
export function editLines(bytes: string, a: LineinfileArgs): string | null {
  const lines = readLines(bytes);
  const line = textBytes(a.line ?? '');
  const regexp = a.regexp !== undefined ? new RegExp(pythonRegex(textBytes(a.regexp))) : undefined;
  const searchString = a.search_string !== undefined ? textBytes(a.search_string) : undefined;
  const join = (ls: string[]) => ls.join('');

  if (a.state === 'absent') {
    const kept = lines.filter((l) => !(regexp ? search(regexp, l) : searchString !== undefined ? l.includes(searchString) : line === stripEol(l)));
    return kept.length === lines.length ? null : join(kept);
  }

  const insAfter = a.insertafter !== undefined && a.insertafter !== 'EOF' && a.insertafter !== 'BOF' ? a.insertafter : undefined;
  const insBefore = a.insertbefore !== undefined && a.insertbefore !== 'BOF' ? a.insertbefore : undefined;
  const ins = insAfter !== undefined ? new RegExp(pythonRegex(textBytes(insAfter))) : insBefore !== undefined ? new RegExp(pythonRegex(textBytes(insBefore))) : undefined;
  const index = [-1, -1];
  let match: RegExpExecArray | boolean | null = null;
  let exactLineMatch = false;

  if (regexp) {
    for (const [i, cur] of lines.entries()) {
      const m = search(regexp, cur);
      if (m) {
        index[0] = i;
        match = m;
        if (a.firstmatch) break;
      }
    }
  }
  if (searchString !== undefined) {
    for (const [i, cur] of lines.entries()) {
      if (cur.includes(searchString)) {
        index[0] = i;
        match = true;
        if (a.firstmatch) break;
      }
    }
  }
  if (!match) {
    for (const [i, cur] of lines.entries()) {
      if (line === stripEol(cur)) {
        index[0] = i;
        exactLineMatch = true;
      } else if (ins && search(ins, cur)) {
        if (a.insertafter !== undefined) {
          index[1] = i + 1;
          if (a.firstmatch) break;
        }
        if (a.insertbefore !== undefined) {
          index[1] = i;
          if (a.firstmatch) break;
        }
      }
    }
  }

  const endsWithEol = (l: string | undefined) => l !== undefined && (l.endsWith('\n') || l.endsWith('\r'));
  let changed = false;
  if (index[0] !== -1) {
    let newLine = a.backrefs && match && typeof match !== 'boolean' ? expand(match, line) : line;
    if (!newLine.endsWith('\n')) newLine += '\n';
    if (a.regexp === undefined && a.search_string === undefined && !match && !exactLineMatch) {
      // not reachable: index[0] is only set by a match or an exact line
    } else if (lines[index[0]] !== newLine) {
      lines[index[0]] = newLine;
      changed = true;
    }
  } else if (a.backrefs) {
    // backrefs and no match: the file is left alone
  } else if (a.insertbefore === 'BOF' || a.insertafter === 'BOF') {
    lines.unshift(line + '\n');
    changed = true;
  } else if (a.insertafter === 'EOF' || index[1] === -1) {
    if (lines.length && !endsWithEol(lines[lines.length - 1])) lines.push('\n');
    lines.push(line + '\n');
    changed = true;
  } else if (a.insertafter !== undefined && index[1] !== -1) {
    if (lines.length === index[1]) {
      if (stripEol(lines[index[1] - 1]!) !== line) {
        lines.push(line + '\n');
        changed = true;
      }
    } else if (line !== stripEol(lines[index[1]]!)) {
      lines.splice(index[1], 0, line + '\n');
      changed = true;
    }
  } else {
    lines.splice(index[1], 0, line + '\n');
    changed = true;
  }
  return changed ? join(lines) : null;
}

/**
 * Ansible's `lineinfile`: one line present (optionally replacing the last line matching
 * `regexp` or containing `search_string`) or every matching line absent, on the file's bytes.
 * Plans a put of the whole new content.
 */
export const lineinfileOperation: Operation<LineinfileArgs> = {
  name: 'lineinfile',
  args,
  facts: (a) => [fileRef(a.path), contentRef(a.path)],
  plan(a, ctx) {
    const current = ctx.facts.get<FileState>(fileRef(a.path));
    const bytes = current.type === 'file' ? (ctx.facts.get<Buffer | null>(contentRef(a.path)) ?? Buffer.alloc(0)) : null;
    if (bytes === null) {
      if (current.type === 'link') throw new Error(`${a.path} is a symbolic link to ${current.target}: vzsb does not edit through links (Ansible would edit the target); give the target's path`);
      if (current.type !== 'absent') throw new Error(`${a.path} is a ${current.type}, not a regular file`);
      if (a.state === 'absent') return { commands: [], reason: `${a.path} does not exist` };
      if (!a.create) throw new Error(`${a.path} does not exist (set create: true to create it)`);
    }
    const text = bytes === null ? '' : bytesText(bytes);
    const edited = editLines(text, a);
    const content = Buffer.from(edited ?? text, 'latin1');
    const plan = planFileContent(ctx.facts, a.path, content, { ...a, parents: a.create }, ctx.wantDiff);
    if (edited === null && !plan.commands.length) {
      return { ...plan, reason: a.state === 'absent' ? `no matching line in ${a.path}` : `line present in ${a.path}` };
    }
    return plan;
  },
};
