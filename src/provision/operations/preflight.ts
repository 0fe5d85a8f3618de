import { z } from 'zod';
import type { PreflightResult } from '../facts/preflight.js';
import type { Operation } from '../types.js';

const role = z.enum(['hypervisor', 'balancer', 'gateway']);
const args = z.strictObject({
  /** Whose checks (src/doctor/checks.ts, `on`): a role or a list of roles. */
  role: z.union([role, z.array(role).min(1)]),
  /** Check ids to leave out on these hosts (e.g. "kernel.userns" where containers stay privileged). */
  skip: z.array(z.string().min(1)).default([]),
});
export type PreflightArgs = z.infer<typeof args>;

const factArg = (a: PreflightArgs) => [a.role].flat().join(',');

/**
 * The role's pre-flight: what the host must have before the play changes anything (kernel
 * features, cgroup controllers). Its facts are gathered with every other fact, in the one facts
 * round trip; a failed check fails the host at planning, so nothing of the play is applied.
 */
export const preflightOperation: Operation<PreflightArgs> = {
  name: 'preflight',
  args,
  facts: (a) => [{ fact: 'preflight', arg: factArg(a) }],
  plan(a, { facts }) {
    const results = facts.get<PreflightResult[]>({ fact: 'preflight', arg: factArg(a) }).filter((r) => !a.skip.includes(r.id));
    const failed = results.filter((r) => !r.ok);
    if (failed.length) {
      throw new Error(`pre-flight failed, nothing was changed: ${failed.map((r) => `${r.id} (${r.title}): ${r.detail}; fix: ${r.fix}`).join(' | ')}`);
    }
    return { commands: [], reason: `${results.length} ${results.length === 1 ? 'check' : 'checks'} passed` };
  },
};
