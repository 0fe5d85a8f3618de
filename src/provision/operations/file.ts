import { posix } from 'node:path';
import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Command, FactRef, Operation, Plan } from '../types.js';
import { attributeCommands, fileRef, ownership, pathSchema, withAliases } from './common.js';
import { isSymbolic, resolveMode } from './modes.js';

const EMPTY_SHA256 = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

const args = withAliases(
  z
    .strictObject({
      path: pathSchema,
      /** Unset: the path's current type (Ansible's default); a missing path is an error then. */
      state: z.enum(['file', 'directory', 'absent', 'link', 'hard', 'touch']).optional(),
      /** Link target (state=link: as written into the link; state=hard: the file to link). */
      src: z.string().min(1).optional(),
      /** Owner, group and mode for everything under a directory too. */
      recurse: z.boolean().default(false),
      /** state=link/hard: replace a file there, or link to a target that does not exist (yet). */
      force: z.boolean().default(false),
      /** Attributes of a link's target instead of the link (Ansible's default is true). */
      follow: z.boolean().default(true),
      ...ownership,
    })
    .superRefine((a, ctx) => {
      if ((a.state === 'link' || a.state === 'hard') && !a.src) ctx.addIssue({ code: 'custom', path: ['src'], message: `required for state=${a.state}` });
      if (a.state === 'link' && a.mode !== undefined) {
        ctx.addIssue({ code: 'custom', path: ['mode'], message: 'vzsb refuses mode with state=link: a Linux link has no mode of its own (Ansible reports a change on every run and changes nothing)' });
      }
      if (a.recurse && a.state !== undefined && a.state !== 'directory') ctx.addIssue({ code: 'custom', path: ['recurse'], message: 'recurse needs state=directory' });
      if (a.recurse && a.mode !== undefined && isSymbolic(a.mode)) {
        ctx.addIssue({ code: 'custom', path: ['mode'], message: 'vzsb refuses a symbolic mode with recurse (Ansible applies it entry by entry); give an octal mode' });
      }
    }),
  { dest: 'path', name: 'path' },
);
export type FileArgs = z.infer<typeof args>;

type Attrs = { owner?: string | undefined; group?: string | undefined; mode?: string | undefined };

/** The tree fact: whether anything under a directory has other attributes than wanted. */
export function treeRef(path: string, want: Attrs): FactRef {
  return { fact: 'tree_differs', arg: JSON.stringify({ path, owner: want.owner, group: want.group, mode: want.mode }) };
}

function absoluteSrc(path: string, src: string): string {
  return posix.isAbsolute(src) ? src : posix.join(posix.dirname(path), src);
}

const stateOf = (f: FileState): string => (f.type === 'file' && (f.links ?? 1) > 1 ? 'hard' : f.type);

/** Ansible's `file`: a path's type and attributes (directories, links, removal, touch). */
export const fileOperation: Operation<FileArgs> = {
  name: 'file',
  args,
  facts: (a) => {
    const refs: FactRef[] = [fileRef(a.path)];
    if ((a.state === 'link' || a.state === 'hard') && a.src) refs.push(fileRef(absoluteSrc(a.path, a.src)));
    if (a.recurse && (a.owner || a.group || a.mode)) refs.push(treeRef(a.path, a));
    return refs;
  },
  plan(a, ctx) {
    const current = ctx.facts.get<FileState>(fileRef(a.path));
    const own: Attrs = { owner: a.owner, group: a.group, mode: a.mode };
    const state = a.state ?? (a.recurse ? 'directory' : current.type === 'absent' ? 'file' : stateOf(current));
    switch (state) {
      case 'absent':
        if (current.type === 'absent') return { commands: [], reason: `${a.path} is absent` };
        return { commands: [{ kind: 'shell', script: `rm -rf -- ${quote(a.path)}` }], reason: `remove ${a.path}`, effects: [[fileRef(a.path), { type: 'absent' }]] };
      case 'directory':
        return planDirectory(a, current, own, ctx.facts.get.bind(ctx.facts));
      case 'link':
        return planLink(a, current, ctx.facts.get<FileState>(fileRef(absoluteSrc(a.path, a.src!))));
      case 'hard':
        return planHard(a, current, ctx.facts.get<FileState>(fileRef(absoluteSrc(a.path, a.src!))), own);
      case 'touch':
        return planTouch(a, current, own);
      default:
        return planAttributes(a, current, own);
    }
  },
};

function attrsPlan(path: string, own: Attrs, current: FileState & { type: 'file' | 'directory' }, what: string): Plan {
  const attrs = attributeCommands(path, own, current, { isDir: current.type === 'directory' });
  const after = { ...current, ...(attrs.mode ? { mode: attrs.mode } : {}), ...(own.owner ? { owner: own.owner } : {}), ...(own.group ? { group: own.group } : {}) };
  return {
    commands: attrs.commands,
    reason: attrs.commands.length ? `${path}: ${attrs.changes.join(', ')}` : what,
    effects: [[fileRef(path), after]],
  };
}

/** state=file, or no state on an existing path: attributes only. */
function planAttributes(a: FileArgs, current: FileState, own: Attrs): Plan {
  if (current.type === 'absent') throw new Error(`file (${a.path}) is absent, cannot continue`);
  if (current.type === 'link') {
    if (a.state === 'file') throw new Error(`file (${a.path}) is link, cannot continue`);
    return planLinkAttributes(a, current, own);
  }
  if (current.type === 'other') throw new Error(`${a.path} is not a file, directory or link`);
  if (current.type === 'directory' && a.state === 'file') throw new Error(`file (${a.path}) is directory, cannot continue`);
  return attrsPlan(a.path, own, current, `${a.path} is up to date`);
}

function planLinkAttributes(a: FileArgs, current: FileState & { type: 'link' }, own: Attrs): Plan {
  if (own.mode !== undefined) throw new Error(`${a.path} is a link: vzsb refuses mode on a link (Ansible reports a change on every run and changes nothing)`);
  const parts: string[] = [];
  if (own.owner && !(current.owner === own.owner || String(current.uid) === own.owner)) parts.push(`chown -h ${quote(own.owner)} ${quote(a.path)}`);
  if (own.group && !(current.group === own.group || String(current.gid) === own.group)) parts.push(`chgrp -h ${quote(own.group)} ${quote(a.path)}`);
  return {
    commands: parts.length ? [{ kind: 'shell', script: parts.join('\n') }] : [],
    reason: parts.length ? `${a.path}: owner of the link` : `${a.path} links to ${current.target}`,
    effects: [[fileRef(a.path), { ...current, ...(own.owner ? { owner: own.owner } : {}), ...(own.group ? { group: own.group } : {}) }]],
  };
}

function planDirectory(a: FileArgs, current: FileState, own: Attrs, get: <T>(ref: FactRef) => T): Plan {
  const tree: Command[] = [];
  if (a.recurse && (own.owner || own.group || own.mode) && get<boolean>(treeRef(a.path, own))) {
    const p = quote(a.path);
    tree.push({
      kind: 'shell',
      script: [own.owner ? `chown -R ${quote(own.owner)} ${p}` : '', own.group ? `chgrp -R ${quote(own.group)} ${p}` : '', own.mode ? `chmod -R ${own.mode} ${p}` : ''].filter(Boolean).join('\n'),
    });
  }
  if (current.type === 'directory') {
    const plan = attrsPlan(a.path, own, current, `directory ${a.path} exists`);
    return tree.length ? { ...plan, commands: [...plan.commands, ...tree], reason: `${a.path}: attributes under it` } : plan;
  }
  if (current.type === 'link' && a.follow) throw new Error(`${a.path} is a link: vzsb does not follow it to a directory (Ansible would); give the target's path`);
  if (current.type !== 'absent') throw new Error(`${a.path} already exists as a ${current.type === 'file' ? 'file' : current.type}`);
  // As Ansible: every missing component is created and given the attributes, parents included.
  const mode = resolveMode(own.mode, '0755', true);
  const components = a.path.split('/').filter(Boolean).map((_, i, all) => '/' + all.slice(0, i + 1).join('/'));
  const set = [own.owner ? `chown ${quote(own.owner)} "$d"` : '', own.group ? `chgrp ${quote(own.group)} "$d"` : '', mode && mode !== '0755' ? `chmod ${mode} "$d"` : ''].filter(Boolean);
  const script = `for d in ${components.map(quote).join(' ')}; do if [ ! -e "$d" ]; then mkdir -- "$d"${set.length ? `; ${set.join('; ')}` : ''}; fi; done`;
  const after: FileState = { type: 'directory', mode: mode ?? '0755', owner: own.owner ?? 'root', group: own.group ?? 'root' };
  return { commands: [{ kind: 'shell', script }, ...tree], reason: `create directory ${a.path}`, effects: [[fileRef(a.path), after]] };
}

function planLink(a: FileArgs, current: FileState, target: FileState): Plan {
  const src = a.src!;
  const p = quote(a.path);
  if (target.type === 'absent' && !a.force) {
    throw new Error(`src file does not exist, use "force: true" if you really want to create the link: ${absoluteSrc(a.path, src)}`);
  }
  const own: Attrs = { owner: a.owner, group: a.group };
  if (current.type === 'link' && current.target === src) return planLinkAttributes(a, current, own);
  if (current.type === 'directory') throw new Error(`refusing to convert from directory to symlink for ${a.path}`);
  if ((current.type === 'file' || current.type === 'other') && !a.force) throw new Error(`refusing to convert from ${stateOf(current)} to symlink for ${a.path}`);
  const chown = [a.owner ? `chown -h ${quote(a.owner)} ${p}` : '', a.group ? `chgrp -h ${quote(a.group)} ${p}` : ''].filter(Boolean);
  return {
    commands: [{ kind: 'shell', script: [`ln -sfn -- ${quote(src)} ${p}`, ...chown].join('\n') }],
    reason: `link ${a.path} -> ${src}`,
    effects: [[fileRef(a.path), { type: 'link', target: src, ...(a.owner ? { owner: a.owner } : {}), ...(a.group ? { group: a.group } : {}) }]],
  };
}

function planHard(a: FileArgs, current: FileState, target: FileState, own: Attrs): Plan {
  const src = absoluteSrc(a.path, a.src!);
  if (target.type === 'absent') throw new Error(`src does not exist: ${src}`);
  if (target.type !== 'file') throw new Error(`vzsb hard-links regular files only; ${src} is a ${target.type}`);
  if (current.type === 'file' && current.inode !== undefined && current.inode === target.inode) return attrsPlan(a.path, own, current, `${a.path} is a hard link to ${src}`);
  if (current.type === 'directory') throw new Error(`refusing to replace the directory ${a.path} with a hard link`);
  if (current.type !== 'absent' && !a.force) throw new Error(`Cannot link, ${stateOf(current) === 'hard' ? 'different hard link' : stateOf(current)} exists at destination: ${a.path}`);
  const attrs = attributeCommands(a.path, own, target);
  return {
    commands: [{ kind: 'shell', script: `ln -f -- ${quote(src)} ${quote(a.path)}` }, ...attrs.commands],
    reason: `hard link ${a.path} -> ${src}`,
    effects: [[fileRef(a.path), { ...target, links: (target.links ?? 1) + 1, ...(attrs.mode ? { mode: attrs.mode } : {}) }]],
  };
}

function planTouch(a: FileArgs, current: FileState, own: Attrs): Plan {
  const p = quote(a.path);
  if (current.type === 'absent') {
    const attrs = attributeCommands(a.path, own, undefined, { createdMode: '0644' });
    return {
      commands: [{ kind: 'shell', script: `touch -- ${p}` }, ...attrs.commands],
      reason: `create empty file ${a.path}`,
      effects: [[fileRef(a.path), { type: 'file', mode: attrs.mode ?? '0644', owner: own.owner ?? 'root', group: own.group ?? 'root', size: 0, sha256: EMPTY_SHA256 }]],
    };
  }
  if (current.type === 'other') throw new Error(`${a.path} is not a file, directory or link`);
  // Ansible touches an existing path (times updated: always a change), then sets attributes.
  const attrs = current.type === 'link' ? undefined : attributeCommands(a.path, own, current, { isDir: current.type === 'directory' });
  return {
    commands: [{ kind: 'shell', script: `touch ${current.type === 'link' && !a.follow ? '-h ' : ''}-- ${p}` }, ...(attrs?.commands ?? [])],
    reason: `touch ${a.path}`,
  };
}
