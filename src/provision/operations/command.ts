import { z } from 'zod';
import { quote } from '../shell.js';
import type { ChangedWhen, Operation } from '../types.js';

const changedWhen = z.union([
  z.boolean(),
  z.strictObject({ stdout_contains: z.string() }),
  z.strictObject({ stdout_not_contains: z.string() }),
]);

const args = z
  .strictObject({
    cmd: z.string().min(1).optional(),
    argv: z.array(z.string()).min(1).optional(),
    chdir: z.string().optional(),
    /** Skip when this path exists ("already done"). */
    creates: z.string().optional(),
    /** Skip unless this path exists. */
    removes: z.string().optional(),
    /** Skip when this shell check succeeds ("already so"), e.g. `ip route show 10.1.0.0/24 | grep -q via`. */
    unless: z.string().min(1).optional(),
    /** Skip unless this shell check succeeds. */
    onlyif: z.string().min(1).optional(),
    changed_when: changedWhen.optional(),
    /** Not secret in the playbook, but kept out of logs and reports. */
    no_log: z.boolean().default(false),
  })
  .superRefine((a, ctx) => {
    if ((a.cmd === undefined) === (a.argv === undefined)) ctx.addIssue({ code: 'custom', path: ['cmd'], message: 'exactly one of cmd or argv is required' });
  });
export type CommandArgs = z.infer<typeof args>;

/**
 * A shell command (`cmd`, run by sh) or a program (`argv`, no shell). It reports changed
 * unless `creates`/`removes` show it is already done or `changed_when` says otherwise.
 */
export const commandOperation: Operation<CommandArgs> = {
  name: 'command',
  args,
  facts: (a) => [
    ...(a.creates ? [{ fact: 'exists', arg: a.creates }] : []),
    ...(a.removes ? [{ fact: 'exists', arg: a.removes }] : []),
    ...(a.unless ? [{ fact: 'succeeds', arg: a.unless }] : []),
    ...(a.onlyif ? [{ fact: 'succeeds', arg: a.onlyif }] : []),
  ],
  plan(a, { facts }) {
    if (a.creates && facts.get<boolean>({ fact: 'exists', arg: a.creates })) {
      return { commands: [], reason: `${a.creates} exists` };
    }
    if (a.removes && !facts.get<boolean>({ fact: 'exists', arg: a.removes })) {
      return { commands: [], reason: `${a.removes} does not exist` };
    }
    if (a.unless && facts.get<boolean>({ fact: 'succeeds', arg: a.unless })) {
      return { commands: [], reason: `unless: ${a.unless.split('\n')[0]} succeeds` };
    }
    if (a.onlyif && !facts.get<boolean>({ fact: 'succeeds', arg: a.onlyif })) {
      return { commands: [], reason: `onlyif: ${a.onlyif.split('\n')[0]} fails` };
    }
    const body = a.cmd ?? a.argv!.map(quote).join(' ');
    const script = a.chdir ? `cd ${quote(a.chdir)}\n${body}` : body;
    const cw: ChangedWhen =
      a.changed_when === undefined || typeof a.changed_when === 'boolean'
        ? { always: a.changed_when ?? true }
        : 'stdout_contains' in a.changed_when
          ? { stdoutContains: a.changed_when.stdout_contains }
          : { stdoutNotContains: a.changed_when.stdout_not_contains };
    return {
      commands: [{ kind: 'shell', script, ...(a.no_log ? { mask: [body] } : {}) }],
      reason: a.no_log ? 'run (command hidden: no_log)' : `run ${body.split('\n')[0]}`,
      changedWhen: cw,
      effects: [
        ...(a.creates ? ([[{ fact: 'exists', arg: a.creates }, true]] as Array<[{ fact: string; arg: string }, unknown]>) : []),
        ...(a.removes ? ([[{ fact: 'exists', arg: a.removes }, false]] as Array<[{ fact: string; arg: string }, unknown]>) : []),
        // Once run, the command has made its `unless` check true (that is what it is for).
        ...(a.unless ? ([[{ fact: 'succeeds', arg: a.unless }, true]] as Array<[{ fact: string; arg: string }, unknown]>) : []),
      ],
    };
  },
};
