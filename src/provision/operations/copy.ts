import { posix } from 'node:path';
import { z } from 'zod';
import type { FileState } from '../facts/file.js';
import { quote } from '../shell.js';
import type { Command, FactRef, Operation, Plan } from '../types.js';
import { attributeCommands, contentFactsFor, fileRef, ownership, pathSchema, planFileContent, validateSchema } from './common.js';

const args = z
  .strictObject({
    dest: pathSchema,
    src: z.string().optional(),
    content: z.union([z.string(), z.instanceof(Buffer)]).optional(),
    /** Filled by prepare: the base name of the local src (for a directory dest). */
    src_name: z.string().optional(),
    /** false: never replace a file that exists (its attributes are still set). */
    force: z.boolean().default(true),
    backup: z.boolean().default(false),
    /** src is a file on the host, not on the control machine. */
    remote_src: z.boolean().default(false),
    ...ownership,
    validate: validateSchema,
  })
  .superRefine((a, ctx) => {
    if ((a.src === undefined) === (a.content === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['src'], message: 'exactly one of src or content is required' });
    }
    if (a.content !== undefined && a.dest.endsWith('/')) ctx.addIssue({ code: 'custom', path: ['dest'], message: 'can not use content with a dir as dest' });
    if (a.remote_src && a.src !== undefined && !a.src.startsWith('/')) ctx.addIssue({ code: 'custom', path: ['src'], message: 'with remote_src, an absolute path on the host' });
    if (a.remote_src && a.src?.endsWith('/')) ctx.addIssue({ code: 'custom', path: ['src'], message: 'vzsb copies single files with remote_src (Ansible also copies directories)' });
  });
export type CopyArgs = z.infer<typeof args>;

/** Where the file goes: into dest when dest is (or, ending in "/", will be) a directory. */
function targets(a: CopyArgs): { dest: string; inner?: string } {
  const name = a.src_name ?? (a.src !== undefined ? posix.basename(a.src) : undefined);
  const dest = a.dest.length > 1 ? a.dest.replace(/\/+$/, '') : a.dest;
  return name !== undefined ? { dest, inner: posix.join(dest, name) } : { dest };
}

/** A local file (or inline content, or with remote_src a file on the host) put on the host when its content or attributes differ. */
export const copyOperation: Operation<CopyArgs> = {
  name: 'copy',
  args,
  async prepare(a, env) {
    if (a.src === undefined || a.remote_src) return a;
    if (a.src.endsWith('/')) throw new Error(`src ${a.src}: vzsb copies single files (Ansible also copies directories)`);
    const { src: _src, ...rest } = a;
    return { ...rest, src_name: posix.basename(a.src), content: await env.readLocalFile(a.src) };
  },
  facts: (a, o) => {
    const t = targets(a);
    const refs: FactRef[] = [...contentFactsFor(t.dest, o.diff), ...(t.inner ? contentFactsFor(t.inner, o.diff) : [])];
    if (a.remote_src && a.src) refs.push(fileRef(a.src));
    return refs;
  },
  plan(a, ctx) {
    const t = targets(a);
    const destState = ctx.facts.get<FileState>(fileRef(t.dest));
    let path = t.dest;
    const pre: Command[] = [];
    if (t.inner && (destState.type === 'directory' || a.dest.endsWith('/'))) {
      path = t.inner;
      if (destState.type === 'absent') pre.push({ kind: 'shell', script: `mkdir -p -- ${quote(t.dest)}` });
    }
    const current = path === t.dest ? destState : ctx.facts.get<FileState>(fileRef(path));
    if (!a.force && current.type !== 'absent') {
      // Ansible's force: false leaves an existing file's content; attributes are still applied
      if (current.type !== 'file') return { commands: [], reason: `${path} exists (force: false)` };
      const attrs = attributeCommands(path, a, current);
      return { commands: attrs.commands, reason: attrs.commands.length ? `${path}: ${attrs.changes.join(', ')}` : `${path} exists (force: false)` };
    }
    if (a.remote_src) {
      const plan = planRemote(a, path, current, ctx.facts.get<FileState>(fileRef(a.src!)));
      return pre.length ? { ...plan, commands: [...pre, ...plan.commands] } : plan;
    }
    const content = Buffer.isBuffer(a.content) ? a.content : Buffer.from(a.content ?? '');
    const plan = planFileContent(ctx.facts, path, content, a, ctx.wantDiff);
    return pre.length && plan.commands.length ? { ...plan, commands: [...pre, ...plan.commands] } : plan;
  },
};

function planRemote(a: CopyArgs, path: string, current: FileState, src: FileState): Plan {
  if (src.type !== 'file') throw new Error(`src ${a.src} is ${src.type === 'absent' ? 'missing' : `a ${src.type}`} on the host`);
  if (current.type === 'directory' || current.type === 'other') throw new Error(`${path} exists and is a ${current.type}, not a regular file`);
  const effects: Array<[FactRef, unknown]> = [[fileRef(path), { ...src, mode: a.mode ?? (current.type === 'file' ? current.mode : '0644') }]];
  if (current.type === 'file' && current.sha256 === src.sha256) {
    const attrs = attributeCommands(path, a, current);
    return { commands: attrs.commands, reason: attrs.commands.length ? `${path}: ${attrs.changes.join(', ')}` : `${path} is up to date`, effects };
  }
  const p = quote(path);
  const dir = path.replace(/\/[^/]*$/, '') || '/';
  const keep = current.type === 'file' ? `chmod --reference=${p} "$vzsb_tmp"; chown --reference=${p} "$vzsb_tmp"` : 'chmod 0644 "$vzsb_tmp"';
  const script = [`vzsb_tmp=$(mktemp ${quote(dir + '/.vzsb.XXXXXX')})`, `cp -- ${quote(a.src!)} "$vzsb_tmp"`, keep, ...(a.backup && current.type === 'file' ? [`cp -p -- ${p} ${p}".$$.$(date +%Y-%m-%d@%H:%M:%S)~"`] : []), `mv -f "$vzsb_tmp" ${p}`].join('\n');
  const attrs = attributeCommands(path, a, current.type === 'file' ? current : undefined);
  return { commands: [{ kind: 'shell', script }, ...attrs.commands], reason: `copy ${a.src} to ${path} on the host`, effects };
}

