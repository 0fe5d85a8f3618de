import { posix } from 'node:path';
import { z } from 'zod';
import { base64Heredoc, quote } from '../shell.js';
import type { ChangedWhen, FactRef, Operation } from '../types.js';

const changedWhen = z.union([
  z.boolean(),
  z.strictObject({ stdout_contains: z.string() }),
  z.strictObject({ stdout_not_contains: z.string() }),
]);

const baseArgs = {
  cmd: z.string().min(1).optional(),
  argv: z.array(z.string()).min(1).optional(),
  chdir: z.string().optional(),
  /** Skip when a path matching this glob exists ("already done"); relative to chdir. */
  creates: z.string().optional(),
  /** Skip unless a path matching this glob exists. */
  removes: z.string().optional(),
  /** vzsb's: skip when this shell check succeeds ("already so"), e.g. `ip route show 10.1.0.0/24 | grep -q via`. */
  unless: z.string().min(1).optional(),
  /** vzsb's: skip unless this shell check succeeds. */
  onlyif: z.string().min(1).optional(),
  /** Text given to the command's standard input (with a final newline unless stdin_add_newline: false). */
  stdin: z.string().optional(),
  stdin_add_newline: z.boolean().default(true),
  changed_when: changedWhen.optional(),
  /** Not secret in the playbook, but kept out of logs and reports. */
  no_log: z.boolean().default(false),
};

const commandArgs = z
  .strictObject({ ...baseArgs, executable: z.string().optional() })
  .superRefine((a, ctx) => {
    oneOf(a, ctx);
    // Ansible's command ignores executable (with a warning); vzsb refuses it there.
    if (a.executable !== undefined) ctx.addIssue({ code: 'custom', path: ['executable'], message: 'executable applies to shell, not command (Ansible ignores it with a warning; vzsb refuses)' });
  });
const shellArgs = z.strictObject({ ...baseArgs, executable: z.string().regex(/^\//, 'an absolute path').optional() }).superRefine(oneOf);

function oneOf(a: { cmd?: string | undefined; argv?: string[] | undefined }, ctx: z.RefinementCtx) {
  if ((a.cmd === undefined) === (a.argv === undefined)) ctx.addIssue({ code: 'custom', path: ['cmd'], message: 'exactly one of cmd or argv is required' });
}
export type CommandArgs = z.infer<typeof shellArgs>;

/** Python's shlex.split (POSIX mode, no comments): what Ansible's command runs instead of a shell. */
export function shlexSplit(text: string): string[] {
  const out: string[] = [];
  let word: string | null = null;
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) {
      if (word !== null) out.push(word);
      word = null;
      i++;
    } else if (c === "'") {
      const j = text.indexOf("'", i + 1);
      if (j < 0) throw new Error('No closing quotation');
      word = (word ?? '') + text.slice(i + 1, j);
      i = j + 1;
    } else if (c === '"') {
      let w = '';
      i++;
      while (i < text.length && text[i] !== '"') {
        if (text[i] === '\\' && i + 1 < text.length && '\\"$`\n'.includes(text[i + 1]!)) i++;
        w += text[i++];
      }
      if (i >= text.length) throw new Error('No closing quotation');
      word = (word ?? '') + w;
      i++;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new Error('No escaped character');
      word = (word ?? '') + (text[i + 1] === '\n' ? '' : text[i + 1]);
      i += 2;
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  if (word !== null) out.push(word);
  return out;
}

const globRef = (pattern: string, chdir: string | undefined): FactRef => ({ fact: 'glob', arg: chdir && !pattern.startsWith('/') ? posix.join(chdir, pattern) : pattern });

function makeCommand(name: 'command' | 'shell'): Operation<CommandArgs> {
  return {
    name,
    args: (name === 'shell' ? shellArgs : commandArgs) as z.ZodType<CommandArgs>,
    facts: (a) => [
      ...(a.creates ? [globRef(a.creates, a.chdir)] : []),
      ...(a.removes ? [globRef(a.removes, a.chdir)] : []),
      ...(a.unless ? [{ fact: 'succeeds', arg: a.unless }] : []),
      ...(a.onlyif ? [{ fact: 'succeeds', arg: a.onlyif }] : []),
    ],
    plan(a, { facts, check }) {
      if (a.creates && facts.get<boolean>(globRef(a.creates, a.chdir))) return { commands: [], reason: `${check ? 'Would' : 'Did'} not run command since '${a.creates}' exists` };
      if (a.removes && !facts.get<boolean>(globRef(a.removes, a.chdir))) return { commands: [], reason: `${check ? 'Would' : 'Did'} not run command since '${a.removes}' does not exist` };
      if (a.unless && facts.get<boolean>({ fact: 'succeeds', arg: a.unless })) return { commands: [], reason: `unless: ${a.unless.split('\n')[0]} succeeds` };
      if (a.onlyif && !facts.get<boolean>({ fact: 'succeeds', arg: a.onlyif })) return { commands: [], reason: `onlyif: ${a.onlyif.split('\n')[0]} fails` };
      // command: no shell (Ansible splits the line like shlex and runs the program); shell: sh -c or executable -c.
      let body: string;
      if (name === 'command') body = (a.argv ?? shlexSplit(a.cmd!)).map(quote).join(' ');
      else body = a.argv ? a.argv.map(quote).join(' ') : a.executable ? `${quote(a.executable)} -c ${quote(a.cmd!)}` : a.cmd!;
      if (a.stdin !== undefined) {
        // $vzsb_t is the apply script's temporary directory (removed when it ends)
        const input = Buffer.from(a.stdin + (a.stdin_add_newline ? '\n' : ''));
        body = `${base64Heredoc('base64 -d > "$vzsb_t/stdin"', input)}\n{ ${body}\n} < "$vzsb_t/stdin"`;
      }
      const script = a.chdir ? `cd ${quote(a.chdir)}\n${body}` : body;
      const cw: ChangedWhen =
        a.changed_when === undefined || typeof a.changed_when === 'boolean'
          ? { always: a.changed_when ?? true }
          : 'stdout_contains' in a.changed_when
            ? { stdoutContains: a.changed_when.stdout_contains }
            : { stdoutNotContains: a.changed_when.stdout_not_contains };
      const shown = a.cmd ?? a.argv!.join(' ');
      return {
        commands: [{ kind: 'shell', script, ...(a.no_log ? { mask: [body, shown] } : {}) }],
        reason: a.no_log ? 'run (command hidden: no_log)' : `run ${shown.split('\n')[0]}`,
        changedWhen: cw,
        // Ansible's check mode: a command without creates/removes is skipped (nothing to judge by).
        // vzsb's unless/onlyif were decided from facts above: then it is known that it would run.
        ...(check && !a.creates && !a.removes && !a.unless && !a.onlyif ? { checkSkipped: 'Command would have run if not in check mode' } : {}),
        effects: [
          ...(a.creates ? ([[globRef(a.creates, a.chdir), true]] as Array<[FactRef, unknown]>) : []),
          ...(a.removes ? ([[globRef(a.removes, a.chdir), false]] as Array<[FactRef, unknown]>) : []),
          // Once run, the command has made its `unless` check true (that is what it is for).
          ...(a.unless ? ([[{ fact: 'succeeds', arg: a.unless }, true]] as Array<[FactRef, unknown]>) : []),
        ],
      };
    },
  };
}

/** Ansible's `command`: a program and its arguments, no shell; reports changed unless creates/removes/changed_when say otherwise. */
export const commandOperation = makeCommand('command');
/** Ansible's `shell`: the line run by /bin/sh (or `executable`). */
export const shellOperation = makeCommand('shell');
