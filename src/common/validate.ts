import type { z } from 'zod';
import { VzsbError, describe } from './errors.js';

/**
 * Parse `unknown` input (a config file, an HTTP body) with a zod schema, once, at the edge.
 * On failure the error names the source and the dotted path of every bad field, e.g.
 * `hypervisor.yaml: pool.max: expected number, got "ten"`.
 */
export class InputError extends VzsbError {
  readonly issues: { path: string; message: string }[];
  constructor(source: string, issues: { path: string; message: string }[]) {
    const lines = issues.map((i) => `${i.path || '(root)'}: ${i.message}`);
    super('E_INVALID', `${source}: ${lines.join('; ')}`);
    this.name = 'InputError';
    this.issues = issues;
  }
}

export function dottedPath(path: readonly PropertyKey[]): string {
  return path.map((p) => (typeof p === 'number' ? `[${p}]` : String(p))).join('.').replace(/\.\[/g, '[');
}

export function parseInput<S extends z.ZodType>(schema: S, value: unknown, source: string): z.infer<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = result.error.issues.map((issue) => ({
    path: dottedPath(issue.path),
    message: issueMessage(issue, value),
  }));
  throw new InputError(source, issues);
}

function issueMessage(issue: z.core.$ZodIssue, root: unknown): string {
  const got = valueAt(root, issue.path);
  switch (issue.code) {
    case 'invalid_type':
      return got === undefined ? `required ${issue.expected}` : `expected ${issue.expected}, got ${describe(got)}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.join(', ')}`;
    default:
      return `${issue.message.replace(/^Invalid input: /, '')}, got ${describe(got)}`;
  }
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let cur: unknown = root;
  for (const key of path) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<PropertyKey, unknown>)[key];
  }
  return cur;
}
