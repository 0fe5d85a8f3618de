import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { normalizeSysctlValue } from '../facts/sysctl.js';
import { quote } from '../shell.js';
import type { Command, Diff, FactRef, Operation } from '../types.js';
import { contentRef, fileRef, pathSchema, planFileContent } from './common.js';

const args = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/, 'a kernel parameter like "net.ipv4.ip_forward"'),
    value: z
      .union([z.string(), z.number(), z.boolean()])
      .transform((v) => (typeof v === 'boolean' ? (v ? '1' : '0') : normalizeSysctlValue(String(v))))
      .refine((v) => v !== '' && !v.includes('\n'), 'a non-empty single-line value')
      .optional(),
    state: z.enum(['present', 'absent']).default('present'),
    sysctl_file: pathSchema.default('/etc/sysctl.d/99-vzsandbox.conf'),
    /** Set the live value too (sysctl -w) when it differs. */
    reload: z.boolean().default(true),
  })
  .superRefine((a, ctx) => {
    if (a.state === 'present' && a.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: 'required for state=present' });
  });
export type SysctlArgs = z.infer<typeof args>;

const sysctlRef = (name: string): FactRef => ({ fact: 'sysctl', arg: name });

/** "net/ipv4/ip_forward" and "net.ipv4.ip_forward" are the same key. */
const sameKey = (a: string, b: string) => a.replace(/\//g, '.') === b.replace(/\//g, '.');

/** The file's content with `name = value` set in place of its earlier lines (or appended), or removed. */
export function editSysctlFile(text: string, name: string, value: string | null): string {
  const lines = text === '' ? [] : text.replace(/\n$/, '').split('\n');
  const out: string[] = [];
  let placed = false;
  for (const line of lines) {
    const m = /^\s*-?\s*([^=#;\s]+)\s*=\s*(.*?)\s*$/.exec(line);
    if (m && sameKey(m[1]!, name)) {
      if (value !== null && !placed) out.push(normalizeSysctlValue(m[2]!) === value ? line : `${name} = ${value}`);
      placed = true;
      continue;
    }
    out.push(line);
  }
  if (value !== null && !placed) out.push(`${name} = ${value}`);
  return out.length ? out.join('\n') + '\n' : '';
}

/**
 * Ansible's `sysctl`: a kernel parameter kept in a sysctl.d file, and set live with sysctl -w
 * when `reload` and the live value differs.
 */
export const sysctlOperation: Operation<SysctlArgs> = {
  name: 'sysctl',
  args,
  facts: (a) => [...(a.reload && a.state === 'present' ? [sysctlRef(a.name)] : []), fileRef(a.sysctl_file), contentRef(a.sysctl_file)],
  plan(a, ctx) {
    const current = ctx.facts.get<FileState>(fileRef(a.sysctl_file));
    if (current.type !== 'file' && current.type !== 'absent') throw new Error(`${a.sysctl_file} is a ${current.type}, not a regular file`);
    const text = current.type === 'file' ? (ctx.facts.get<string | null>(contentRef(a.sysctl_file)) ?? '') : '';
    const value = a.state === 'present' ? a.value! : null;
    const next = editSysctlFile(text, a.name, value);
    const commands: Command[] = [];
    const why: string[] = [];
    const effects: Array<[FactRef, unknown]> = [];
    let diff: Diff[] | undefined;
    if (next !== text) {
      const file = planFileContent(ctx.facts, a.sysctl_file, Buffer.from(next), { owner: 'root', group: 'root' }, ctx.wantDiff);
      commands.push(...file.commands);
      effects.push(...file.effects);
      why.push(`${value === null ? 'remove' : 'set'} ${a.name} in ${a.sysctl_file}`);
      diff = file.diff;
    }
    if (a.reload && value !== null) {
      const live = ctx.facts.get<string | null>(sysctlRef(a.name));
      // A missing key may come with a module an earlier task loads: set it and let sysctl judge.
      if (live !== value) {
        commands.push({ kind: 'shell', script: `sysctl -q -w ${quote(`${a.name}=${value}`)}` });
        why.push(live === null ? `set live ${a.name} = ${value} (not present when facts were read)` : `live ${a.name} ${live} -> ${value}`);
        effects.push([sysctlRef(a.name), value]);
      }
    }
    if (!commands.length) return { commands, reason: value === null ? `${a.name} not in ${a.sysctl_file}` : `${a.name} = ${value}` };
    return { commands, reason: why.join('; '), ...(diff ? { diff } : {}), effects };
  },
};
