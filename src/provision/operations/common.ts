import { createHash } from 'node:crypto';
import { z } from 'zod';
import { normalizeMode, type FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Command, Diff, FactRef, HostFacts } from '../types.js';

export const modeSchema = z
  .union([z.string().regex(/^0?[0-7]{3,4}$/, 'an octal mode like "0644"'), z.number().int().min(0).max(0o7777)])
  .transform((m) => (typeof m === 'number' ? normalizeMode(m) : normalizeMode(m)));

export const pathSchema = z.string().regex(/^\//, 'an absolute path');

export const ownership = {
  owner: z.string().min(1).optional(),
  group: z.string().min(1).optional(),
  mode: modeSchema.optional(),
};

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

/** Commands that set owner, group and mode where they differ from `current` (or always when absent). */
export function attributeCommands(
  path: string,
  want: { owner?: string; group?: string; mode?: string },
  current: { owner: string; group: string; mode: string } | undefined,
): { commands: Command[]; changes: string[] } {
  const changes: string[] = [];
  const parts: string[] = [];
  const p = quote(path);
  if (want.owner && want.owner !== current?.owner) {
    parts.push(`chown ${quote(want.owner)} ${p}`);
    changes.push(`owner ${current?.owner ?? '-'} -> ${want.owner}`);
  }
  if (want.group && want.group !== current?.group) {
    parts.push(`chgrp ${quote(want.group)} ${p}`);
    changes.push(`group ${current?.group ?? '-'} -> ${want.group}`);
  }
  if (want.mode && want.mode !== current?.mode) {
    parts.push(`chmod ${want.mode} ${p}`);
    changes.push(`mode ${current?.mode ?? '-'} -> ${want.mode}`);
  }
  return { commands: parts.length ? [{ kind: 'shell', script: parts.join('\n') }] : [], changes };
}

/**
 * The shared planner of copy, template and line edits: make `path` a regular file with exactly
 * `content` and the given attributes. Facts: file (and content when a diff is wanted).
 */
export function planFileContent(
  facts: HostFacts,
  path: string,
  content: Buffer,
  want: { owner?: string; group?: string; mode?: string; validate?: string | undefined },
  wantDiff: boolean,
): { commands: Command[]; reason: string; diff?: Diff[]; effects: Array<[FactRef, unknown]> } {
  const current = facts.get<FileState>(fileRef(path));
  const hash = sha256(content);
  const mode = want.mode ?? (current.type === 'file' ? current.mode : '0644');
  const after: FileState = {
    type: 'file',
    mode,
    owner: want.owner ?? (current.type === 'file' ? current.owner : 'root'),
    group: want.group ?? (current.type === 'file' ? current.group : 'root'),
    size: content.length,
    sha256: hash,
  };
  const effects: Array<[FactRef, unknown]> = [
    [fileRef(path), after],
    [contentRef(path), content.toString('utf8')],
  ];
  if (current.type === 'directory' || current.type === 'other') {
    throw new Error(`${path} exists and is a ${current.type}, not a regular file`);
  }
  if (current.type !== 'file' || current.sha256 !== hash) {
    const diff: Diff[] | undefined = wantDiff
      ? [{ path, before: current.type === 'file' ? (facts.get<string | null>(contentRef(path)) ?? '') : '', after: content.toString('utf8') }]
      : undefined;
    return {
      commands: [{ kind: 'put', path, content, mode, owner: after.owner, group: after.group, ...(want.validate ? { validate: want.validate } : {}) }],
      reason: current.type === 'absent' ? `create ${path}` : current.type === 'link' ? `replace link ${path}` : `update content of ${path}`,
      ...(diff ? { diff } : {}),
      effects,
    };
  }
  const attrs = attributeCommands(path, want, current);
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
