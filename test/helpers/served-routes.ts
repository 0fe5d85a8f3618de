import type { ExecutionContext } from 'ava';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { errorBodySchema, type Route } from '../../src/api/v1/fields.js';

type Scope = NonNullable<Route['scope']>;
export interface Endpoint {
  method: string;
  path: string;
  scope: Scope;
  body?: unknown;
}

/**
 * A daemon serves exactly the routes its OpenAPI file lists, which are the contract's
 * (src/api/v1; test/api/contract.test.ts holds the file to it field by field), and each answer,
 * asked in the order of `endpoints` with the right token, has the contract's shape for its status.
 * `concrete` turns "/v1/leases/{user}" into the path `endpoints` uses. Returns the statuses of
 * the answers that were not errors.
 */
export async function checkServedRoutes(
  t: ExecutionContext,
  o: {
    openapi: string;
    routes: Record<string, Route>;
    endpoints: readonly Endpoint[];
    concrete: (route: string) => string;
    tokens: Record<Scope, string>;
    call: (method: string, path: string, options: { token?: string; body?: unknown }) => Promise<{ status: number; body: unknown; text: string }>;
  },
): Promise<number[]> {
  const doc = parseYaml(await readFile(new URL(`../../docs/api/${o.openapi}`, import.meta.url), 'utf8')) as { paths: Record<string, Record<string, unknown>> };
  const documented = Object.entries(doc.paths)
    .flatMap(([path, ops]) => Object.keys(ops).map((m) => o.concrete(`${m.toUpperCase()} ${path}`)))
    .sort();
  const served = [...o.endpoints.map((e) => `${e.method} ${e.path}`), 'GET /healthz'].sort();
  t.deepEqual(documented, served);
  t.deepEqual(Object.keys(o.routes).map(o.concrete).sort(), served);
  for (const route of served) {
    const [method, path] = route.split(' ') as [string, string];
    const res = await o.call(method, path, { token: 'x'.repeat(20) });
    t.not(res.status, 404, route);
    t.not(res.status, 405, route);
  }
  const answered = new Set<number>();
  for (const e of [{ method: 'GET', path: '/healthz', scope: undefined, body: undefined }, ...o.endpoints]) {
    const [, route] = Object.entries(o.routes).find(([r]) => o.concrete(r) === `${e.method} ${e.path}`)!;
    t.is(route.scope, e.scope, `${e.method} ${e.path}: scope`);
    const res = await o.call(e.method, e.path, { token: e.scope ? o.tokens[e.scope] : undefined, body: e.body });
    const schema = route.answers[res.status];
    if (schema === 'text') t.regex(res.text, /^# HELP /m, `${e.method} ${e.path}: text`);
    else t.true((schema ?? errorBodySchema).safeParse(res.body).success, `${e.method} ${e.path}: ${res.status} ${res.text}`);
    if (schema) answered.add(res.status);
  }
  return [...answered].sort();
}
