import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Command, FactRef, Operation } from '../types.js';
import { attributeCommands, fileRef, ownership, pathSchema } from './common.js';

const args = z.strictObject({
  path: pathSchema,
  state: z.enum(['file', 'directory', 'absent', 'link', 'touch']).default('file'),
  src: z.string().optional(), // link target
  recurse: z.boolean().default(false),
  ...ownership,
});
export type FileArgs = z.infer<typeof args>;

/** Ansible's `file`: a path's type and attributes (directories, links, removal, touch). */
export const fileOperation: Operation<FileArgs> = {
  name: 'file',
  args: args.superRefine((a, ctx) => {
    if (a.state === 'link' && !a.src) ctx.addIssue({ code: 'custom', path: ['src'], message: 'required for state=link' });
  }),
  facts: (a) => [fileRef(a.path)],
  plan(a, { facts }) {
    const current = facts.get<FileState>(fileRef(a.path));
    const p = quote(a.path);
    const own = { owner: a.owner, group: a.group, mode: a.mode };
    switch (a.state) {
      case 'absent':
        if (current.type === 'absent') return { commands: [], reason: `${a.path} is absent` };
        return {
          commands: [{ kind: 'shell', script: `rm -rf -- ${p}` }],
          reason: `remove ${a.path}`,
          effects: [[fileRef(a.path), { type: 'absent' }]],
        };
      case 'directory': {
        const after: FileState = {
          type: 'directory',
          mode: a.mode ?? (current.type === 'directory' ? current.mode : '0755'),
          owner: a.owner ?? (current.type === 'directory' ? current.owner : 'root'),
          group: a.group ?? (current.type === 'directory' ? current.group : 'root'),
        };
        const effects: Array<[FactRef, unknown]> = [[fileRef(a.path), after]];
        if (current.type === 'directory') {
          const attrs = attributeCommands(a.path, own, current);
          return {
            commands: attrs.commands,
            reason: attrs.commands.length ? `${a.path}: ${attrs.changes.join(', ')}` : `directory ${a.path} exists`,
            effects,
          };
        }
        if (current.type !== 'absent') throw new Error(`${a.path} exists and is a ${current.type}, not a directory`);
        const cmds: Command[] = [{ kind: 'shell', script: `mkdir -p -- ${p}` }];
        cmds.push(...attributeCommands(a.path, own, undefined).commands);
        return { commands: cmds, reason: `create directory ${a.path}`, effects };
      }
      case 'link': {
        const target = a.src!;
        if (current.type === 'link' && current.target === target) return { commands: [], reason: `${a.path} links to ${target}` };
        if (current.type === 'directory') throw new Error(`${a.path} is a directory; refusing to replace it with a link`);
        return {
          commands: [{ kind: 'shell', script: `ln -sfn -- ${quote(target)} ${p}` }],
          reason: `link ${a.path} -> ${target}`,
          effects: [[fileRef(a.path), { type: 'link', target }]],
        };
      }
      case 'touch':
      case 'file': {
        if (current.type === 'absent') {
          if (a.state === 'file') throw new Error(`${a.path} does not exist (state=file only changes attributes; use state=touch or copy)`);
          const cmds: Command[] = [{ kind: 'shell', script: `touch -- ${p}` }, ...attributeCommands(a.path, own, undefined).commands];
          return {
            commands: cmds,
            reason: `create empty file ${a.path}`,
            effects: [[fileRef(a.path), { type: 'file', mode: a.mode ?? '0644', owner: a.owner ?? 'root', group: a.group ?? 'root', size: 0, sha256: 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855' }]],
          };
        }
        if (current.type !== 'file') throw new Error(`${a.path} exists and is a ${current.type}, not a regular file`);
        const attrs = attributeCommands(a.path, own, current);
        return {
          commands: attrs.commands,
          reason: attrs.commands.length ? `${a.path}: ${attrs.changes.join(', ')}` : `${a.path} is up to date`,
          effects: [[fileRef(a.path), { ...current, ...(a.mode ? { mode: a.mode } : {}), ...(a.owner ? { owner: a.owner } : {}), ...(a.group ? { group: a.group } : {}) }]],
        };
      }
    }
  },
};
