import { createHash } from 'node:crypto';
import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { modeSchema, resolveMode } from './modes.js';
import { quote } from '../shell.js';
import type { Command, Diff, FactRef, HostFacts } from '../types.js';

export { modeSchema };

export const pathSchema = z.string().regex(/^\//, 'an absolute path');

/** A user or group by name or number (`owner: 0` is an integer in YAML). */
const principal = z.union([z.string().min(1), z.number().int().min(0).transform(String)]);

export const ownership = {
  owner: principal.optional(),
  group: principal.optional(),
  mode: modeSchema.optional(),
};

/**
 * Ansible's argument aliases (`dest` and `name` for lineinfile's `path`, ...): renamed before
 * validation; giving both names is an error, as in Ansible.
 */
export function withAliases<S extends z.ZodType>(schema: S, aliases: Record<string, string>): z.ZodType<z.infer<S>> {
  return z.preprocess((raw, ctx) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw;
    const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
    for (const [alias, name] of Object.entries(aliases)) {
      if (!(alias in out)) continue;
      if (name in out) {
        ctx.addIssue({ code: 'custom', path: [alias], message: `${alias} is an alias of ${name}: give only one of them` });
        continue;
      }
      out[name] = out[alias];
      delete out[alias];
    }
    return out;
  }, schema) as unknown as z.ZodType<z.infer<S>>;
}

/** Whether a wanted owner (name or number) is the current one. */
export function sameOwner(want: string, name: string, id: number | undefined): boolean {
  return want === name || (/^\d+$/.test(want) && id !== undefined && Number(want) === id);
}

/** Ansible's `validate`: a command that must accept the new file (%s) before it replaces the old. */
export const validateSchema = z.string().includes('%s', { message: 'a command with %s for the file, like "visudo -cf %s"' }).optional();

export function fileRef(path: string): FactRef {
  return { fact: 'file', arg: path };
}

export function contentRef(path: string): FactRef {
  return { fact: 'content', arg: path };
}

export function sha256(content: Buffer | string): string {
  return createHash('sha256').update(content).digest('hex');
}

/**
 * Commands that set owner, group and mode where they differ from `current` (or always when
 * absent). A symbolic mode is applied to the current mode (or `createdMode` for a new path).
 */
export function attributeCommands(
  path: string,
  want: { owner?: string | undefined; group?: string | undefined; mode?: string | undefined },
  current: { owner: string; group: string; mode: string; uid?: number | undefined; gid?: number | undefined } | undefined,
  options: { isDir?: boolean; createdMode?: string } = {},
): { commands: Command[]; changes: string[]; mode: string | undefined } {
  const changes: string[] = [];
  const parts: string[] = [];
  const p = quote(path);
  const isDir = options.isDir ?? false;
  const base = current?.mode ?? options.createdMode ?? (isDir ? '0755' : '0644');
  const mode = resolveMode(want.mode, base, isDir);
  if (want.owner && !(current && sameOwner(want.owner, current.owner, current.uid))) {
    parts.push(`chown ${quote(want.owner)} ${p}`);
    changes.push(`owner ${current?.owner ?? '-'} -> ${want.owner}`);
  }
  if (want.group && !(current && sameOwner(want.group, current.group, current.gid))) {
    parts.push(`chgrp ${quote(want.group)} ${p}`);
    changes.push(`group ${current?.group ?? '-'} -> ${want.group}`);
  }
  if (mode && mode !== (current?.mode ?? options.createdMode)) {
    parts.push(`chmod ${mode} ${p}`);
    changes.push(`mode ${current?.mode ?? '-'} -> ${mode}`);
  }
  return { commands: parts.length ? [{ kind: 'shell', script: parts.join('\n') }] : [], changes, mode };
}

/** Ansible's `backup: true`: a copy named like Ansible's backup_local, made before the change. */
export function backupCommand(path: string): Command {
  const p = quote(path);
  return { kind: 'shell', script: `if [ -e ${p} ]; then cp -p -- ${p} ${p}".$$.$(date +%Y-%m-%d@%H:%M:%S)~"; fi` };
}

export interface FileContentWant {
  owner?: string | undefined;
  group?: string | undefined;
  mode?: string | undefined;
  validate?: string | undefined;
  /** Make missing parent directories (lineinfile create, as Ansible's os.makedirs: mode 0755). */
  parents?: boolean;
  backup?: boolean;
}

/**
 * The shared planner of copy, template and line edits: make `path` a regular file with exactly
 * `content` and the given attributes. Facts: file (and content when a diff is wanted). As in
 * Ansible, new content keeps the file's mode and owner unless given; a new file is 0644 root.
 */
export function planFileContent(
  facts: HostFacts,
  path: string,
  content: Buffer,
  want: FileContentWant,
  wantDiff: boolean,
): { commands: Command[]; reason: string; diff?: Diff[]; effects: Array<[FactRef, unknown]> } {
  const current = facts.get<FileState>(fileRef(path));
  if (current.type === 'directory' || current.type === 'other') {
    throw new Error(`${path} exists and is a ${current.type}, not a regular file`);
  }
  const existing = current.type === 'file' ? current : undefined;
  const hash = sha256(content);
  const mode = resolveMode(want.mode, existing?.mode ?? '0644', false) ?? existing?.mode ?? '0644';
  const numeric = (v: string | undefined) => (v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined);
  const after = {
    type: 'file' as const,
    mode,
    owner: want.owner ?? existing?.owner ?? 'root',
    group: want.group ?? existing?.group ?? 'root',
    size: content.length,
    sha256: hash,
    ...(numeric(want.owner) !== undefined || existing?.uid !== undefined ? { uid: numeric(want.owner) ?? (want.owner ? undefined : existing?.uid) } : {}),
    ...(numeric(want.group) !== undefined || existing?.gid !== undefined ? { gid: numeric(want.group) ?? (want.group ? undefined : existing?.gid) } : {}),
  };
  const effects: Array<[FactRef, unknown]> = [
    [fileRef(path), after],
    [contentRef(path), content],
  ];
  if (!existing || existing.sha256 !== hash) {
    const diff: Diff[] | undefined = wantDiff
      ? [{ path, before: existing ? (facts.get<Buffer | null>(contentRef(path)) ?? Buffer.alloc(0)).toString('utf8') : '', after: content.toString('utf8') }]
      : undefined;
    const parent = path.replace(/\/[^/]*$/, '') || '/';
    const commands: Command[] = [];
    if (want.parents && current.type === 'absent') commands.push({ kind: 'shell', script: `mkdir -p -- ${quote(parent)}` });
    if (want.backup && existing) commands.push(backupCommand(path));
    commands.push({ kind: 'put', path, content, mode, owner: after.owner, group: after.group, ...(want.validate ? { validate: want.validate } : {}) });
    return {
      commands,
      reason: current.type === 'absent' ? `create ${path}` : current.type === 'link' ? `replace link ${path}` : `update content of ${path}`,
      ...(diff ? { diff } : {}),
      effects,
    };
  }
  const attrs = attributeCommands(path, want, existing);
  return {
    commands: attrs.commands,
    reason: attrs.commands.length ? `${path}: ${attrs.changes.join(', ')}` : `${path} is up to date`,
    effects,
  };
}

/** The file's stat always; its content only when a diff will be shown. */
export function contentFactsFor(path: string, diff: boolean): FactRef[] {
  return diff ? [fileRef(path), contentRef(path)] : [fileRef(path)];
}
