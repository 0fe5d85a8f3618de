import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Command, Diff, FactRef, Operation } from '../types.js';
import { contentRef, fileRef, pathSchema, planFileContent, withAliases } from './common.js';

const TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't', '1.0']);
const FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f', '0.0']);

const args = withAliases(
  z
    .strictObject({
      name: z
        .string()
        .transform((s) => s.trim())
        .refine((s) => /^[A-Za-z0-9_][A-Za-z0-9_.\/-]*$/.test(s), 'a kernel parameter like "net.ipv4.ip_forward"'),
      // ansible.posix takes the value as a string: booleans and their words become 1 and 0.
      value: z
        .union([z.string(), z.number(), z.boolean()])
        .transform((v) => (typeof v === 'boolean' ? (v ? '1' : '0') : TRUE.has(String(v).toLowerCase()) ? '1' : FALSE.has(String(v).toLowerCase()) ? '0' : String(v).trim()))
        .refine((v) => v !== '' && !v.includes('\n'), 'a non-empty single-line value')
        .optional(),
      state: z.enum(['present', 'absent']).default('present'),
      sysctl_file: pathSchema.default('/etc/sysctl.conf'),
      /** When something changed, or the live value differs: `sysctl -p sysctl_file`. */
      reload: z.boolean().default(true),
      /** Set the live value with `sysctl -w` when it differs. */
      sysctl_set: z.boolean().default(false),
      /** Unknown keys are not an error (sysctl -e). */
      ignoreerrors: z.boolean().default(false),
    })
    .superRefine((a, ctx) => {
      if (a.state === 'present' && a.value === undefined) ctx.addIssue({ code: 'custom', path: ['value'], message: 'required for state=present' });
    }),
  { key: 'name', val: 'value' },
);
export type SysctlArgs = z.infer<typeof args>;

const sysctlRef = (name: string): FactRef => ({ fact: 'sysctl', arg: name });

/** ansible.posix's _values_is_equal: the same words in the same order. */
const sameValue = (a: string | null, b: string) => a !== null && a.split(/\s+/).filter(Boolean).join(' ') === b.split(/\s+/).filter(Boolean).join(' ');

const isSetting = (line: string) => line !== '' && !line.startsWith('#') && !line.startsWith(';') && line.includes('=');

/** Every `key=value` of the file (the last one of a key wins), as ansible.posix reads it. */
export function sysctlFileValues(text: string): Map<string, string> {
  const values = new Map<string, string>();
  for (const raw of text.split(/(?<=\n)/)) {
    const line = raw.trim();
    if (!isSetting(line)) continue;
    const i = line.indexOf('=');
    values.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return values;
}

/**
 * The file as ansible.posix's sysctl rewrites it: every line stripped, settings as `key=value`,
 * a repeated key kept once (its first place), `name` set there (or appended) or removed.
 */
export function editSysctlFile(text: string, name: string, value: string | null): string {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const raw of text.split(/(?<=\n)/)) {
    if (raw === '') continue;
    const line = raw.trim();
    if (!isSetting(line)) {
      out.push(line);
      continue;
    }
    const i = line.indexOf('=');
    const k = line.slice(0, i).trim();
    if (seen.has(k)) continue;
    seen.add(k);
    if (k === name) {
      if (value !== null) out.push(`${k}=${value}`);
    } else out.push(`${k}=${line.slice(i + 1).trim()}`);
  }
  if (!seen.has(name) && value !== null) out.push(`${name}=${value}`);
  return out.map((l) => l + '\n').join('');
}

/**
 * ansible.posix's `sysctl`: a kernel parameter kept in `sysctl_file`; with `reload` the file is
 * applied (`sysctl -p`) when it changed or the live value differs, with `sysctl_set` the live
 * value is set (`sysctl -w`) when it differs.
 */
export const sysctlOperation: Operation<SysctlArgs> = {
  name: 'sysctl',
  args,
  facts: (a) => [sysctlRef(a.name), fileRef(a.sysctl_file), contentRef(a.sysctl_file)],
  plan(a, ctx) {
    const current = ctx.facts.get<FileState>(fileRef(a.sysctl_file));
    if (current.type !== 'file' && current.type !== 'absent') throw new Error(`${a.sysctl_file} is a ${current.type}, not a regular file`);
    const text = current.type === 'file' ? (ctx.facts.get<Buffer | null>(contentRef(a.sysctl_file)) ?? Buffer.alloc(0)).toString('utf8') : '';
    const live = ctx.facts.get<string | null>(sysctlRef(a.name));
    const value = a.state === 'present' ? a.value! : null;
    const inFile = sysctlFileValues(text).get(a.name);

    let changed = false;
    let writeFile = false;
    let setLive = false;
    const why: string[] = [];
    if (inFile === undefined && value !== null) [changed, writeFile] = [true, true];
    else if (inFile === undefined) changed = false;
    else if (inFile && value === null) [changed, writeFile] = [true, true];
    else if (inFile !== value) [changed, writeFile] = [true, true];
    else if (a.reload && !sameValue(live, value!)) changed = true;
    if (a.sysctl_set && value !== null && !sameValue(live, value)) {
      changed = true;
      if (live !== null) setLive = true;
    }
    if (!changed) return { commands: [], reason: value === null ? `${a.name} not in ${a.sysctl_file}` : `${a.name} = ${value}` };

    const commands: Command[] = [];
    const effects: Array<[FactRef, unknown]> = [];
    let diff: Diff[] | undefined;
    const e = a.ignoreerrors ? '-e ' : '';
    if (setLive) {
      commands.push({ kind: 'shell', script: `sysctl ${e}-w ${quote(`${a.name}=${value}`)} >/dev/null` });
      why.push(`live ${a.name} ${live} -> ${value}`);
    }
    if (writeFile) {
      const file = planFileContent(ctx.facts, a.sysctl_file, Buffer.from(editSysctlFile(text, a.name, value)), {}, ctx.wantDiff);
      // the file is rewritten even when only its layout was normalized
      commands.push(...(file.commands.length ? file.commands : [{ kind: 'shell' as const, script: `touch -- ${quote(a.sysctl_file)}` }]));
      effects.push(...file.effects);
      why.push(`${value === null ? 'remove' : 'set'} ${a.name} in ${a.sysctl_file}`);
      diff = file.diff;
    }
    if (a.reload) {
      commands.push({ kind: 'shell', script: `sysctl ${e}-p ${quote(a.sysctl_file)} >/dev/null` });
      why.push(`apply ${a.sysctl_file}`);
    }
    if (value !== null && (a.reload || setLive)) effects.push([sysctlRef(a.name), value]);
    if (!commands.length) commands.push({ kind: 'shell', script: `: ${a.name} is not a live parameter here` });
    return { commands, reason: why.join('; ') || `${a.name}: changed`, ...(diff ? { diff } : {}), effects };
  },
};
