import { z } from 'zod';
import type { Operation } from '../types.js';
import { contentFactsFor, ownership, pathSchema, planFileContent, validateSchema } from './common.js';

const args = z.strictObject({
  src: z.string().min(1),
  dest: pathSchema,
  ...ownership,
  validate: validateSchema,
  /** Filled by prepare: the rendered text. */
  rendered: z.string().optional(),
});
export type TemplateArgs = z.infer<typeof args>;

/** A handlebars template from templates/, rendered on the control machine with the host's vars. */
export const templateOperation: Operation<TemplateArgs> = {
  name: 'template',
  args,
  async prepare(a, env) {
    return { ...a, rendered: await env.renderTemplate(a.src) };
  },
  facts: (a, o) => contentFactsFor(a.dest, o.diff),
  plan(a, ctx) {
    if (a.rendered === undefined) throw new Error(`template ${a.src} was not rendered`);
    return planFileContent(ctx.facts, a.dest, Buffer.from(a.rendered), a, ctx.wantDiff);
  },
};
