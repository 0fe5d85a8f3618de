import { z } from 'zod';
import type { Operation } from '../types.js';
import { contentFactsFor, ownership, pathSchema, planFileContent, validateSchema } from './common.js';

const args = z
  .strictObject({
    dest: pathSchema,
    src: z.string().optional(),
    content: z.union([z.string(), z.instanceof(Buffer)]).optional(),
    ...ownership,
    validate: validateSchema,
  })
  .superRefine((a, ctx) => {
    if ((a.src === undefined) === (a.content === undefined)) {
      ctx.addIssue({ code: 'custom', path: ['src'], message: 'exactly one of src or content is required' });
    }
  });
export type CopyArgs = z.infer<typeof args>;

/** A local file (or inline content) put on the host when its content or attributes differ. */
export const copyOperation: Operation<CopyArgs> = {
  name: 'copy',
  args,
  async prepare(a, env) {
    if (a.src === undefined) return a;
    const { src: _src, ...rest } = a;
    return { ...rest, content: await env.readLocalFile(a.src) };
  },
  facts: (a, o) => contentFactsFor(a.dest, o.diff),
  plan(a, ctx) {
    const content = Buffer.isBuffer(a.content) ? a.content : Buffer.from(a.content ?? '');
    return planFileContent(ctx.facts, a.dest, content, a, ctx.wantDiff);
  },
};
