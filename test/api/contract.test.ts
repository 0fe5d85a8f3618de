import test from 'ava';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { AdminClient } from '../../src/admin/client.js';
import { balancedLeaseSchema, balancerRoutes, gatewayLeaseSchema } from '../../src/api/v1/balancer.js';
import { errorBodySchema, type Route } from '../../src/api/v1/fields.js';
import { hypervisorRoutes } from '../../src/api/v1/hypervisor.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { parseLease } from '../../src/shell/balancer-client.js';
import { reply, stubServer } from '../helpers/http-stub.js';

/**
 * The v1 contract (src/api/v1) against what is written about it and what reads it by hand:
 * the OpenAPI files route by route and field by field, and the gateway's own lease parser
 * document by document.
 */

// ---- OpenAPI ----

type Json = Record<string, unknown>;
const FILES = ['hypervisor.openapi.yaml', 'balancer.openapi.yaml'] as const;
const docs = new Map<string, Json>();
async function openapi(file: string): Promise<Json> {
  if (!docs.has(file)) docs.set(file, parseYaml(await readFile(new URL(`../../docs/api/${file}`, import.meta.url), 'utf8')) as Json);
  return docs.get(file)!;
}

/** `$ref` (in this file or `other.yaml#/...`) followed to what it names, and the file it is in. */
async function deref(node: Json, file: string): Promise<[Json, string]> {
  while (typeof node.$ref === 'string') {
    const [target, pointer = ''] = node.$ref.split('#');
    if (target) file = target;
    let cur: unknown = await openapi(file);
    for (const key of pointer.split('/').filter(Boolean)) cur = (cur as Json)[key];
    if (cur === undefined) throw new Error(`${file}: no ${node.$ref}`);
    node = cur as Json;
  }
  return [node, file];
}

/**
 * A schema (OpenAPI 3.1 or zod's JSON Schema) reduced to what the contract decides: types
 * (null included), enum values, properties, required fields, whether unknown fields are refused,
 * array items, alternatives. Descriptions, examples, formats, patterns and defaults are left out.
 */
interface Shape {
  types: string[];
  enum?: string[];
  properties?: Record<string, Shape>;
  required?: string[];
  closed?: boolean;
  items?: Shape;
  oneOf?: Shape[];
}

async function shape(node: Json, file: string | undefined): Promise<Shape> {
  if (file !== undefined) [node, file] = await deref(node, file);
  if (Array.isArray(node.allOf)) {
    const parts = await Promise.all((node.allOf as Json[]).map((p) => shape(p, file)));
    return {
      types: ['object'],
      properties: Object.assign({}, ...parts.map((p) => p.properties)),
      required: parts.flatMap((p) => p.required ?? []).sort(),
      closed: parts.some((p) => p.closed),
    };
  }
  const alternatives = (node.oneOf ?? node.anyOf) as Json[] | undefined;
  if (alternatives) {
    const parts = await Promise.all(alternatives.map((p) => shape(p, file)));
    const isNull = (p: Shape) => p.types.length === 1 && p.types[0] === 'null' && !p.oneOf;
    const rest = parts.filter((p) => !isNull(p));
    const nullable = rest.length < parts.length;
    if (rest.length === 1) return { ...rest[0]!, types: [...new Set([...rest[0]!.types, ...(nullable ? ['null'] : [])])].sort() };
    return { types: nullable ? ['null'] : [], oneOf: rest.sort((a, b) => JSON.stringify(a).localeCompare(JSON.stringify(b))) };
  }
  const values = node.enum as unknown[] | undefined;
  const declared = node.type === undefined ? [] : Array.isArray(node.type) ? (node.type as string[]) : [node.type as string];
  const types = declared.length > 0 ? declared : values ? [...new Set(values.map((v) => (v === null ? 'null' : typeof v)))] : node.properties ? ['object'] : [];
  const out: Shape = { types: [...types].sort() };
  if (values) out.enum = values.map(String).sort();
  if (types.includes('object')) {
    const props = (node.properties ?? {}) as Record<string, Json>;
    out.properties = Object.fromEntries(await Promise.all(Object.entries(props).map(async ([k, v]) => [k, await shape(v, file)] as const)));
    out.required = [...((node.required as string[] | undefined) ?? [])].sort();
    out.closed = node.additionalProperties === false;
  }
  if (types.includes('array')) out.items = await shape((node.items ?? {}) as Json, file);
  return out;
}

const zodShape = (schema: z.ZodType, io: 'input' | 'output') => shape(z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Json, undefined);

function documentedRoutes(doc: Json): string[] {
  return Object.entries(doc.paths as Record<string, Json>)
    .flatMap(([path, ops]) => Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`))
    .sort();
}

for (const [file, routes] of [
  [FILES[0], hypervisorRoutes],
  [FILES[1], balancerRoutes],
] as [string, Record<string, Route>][]) {
  test(`${file} documents exactly the contract's routes, each with its scope, body, query and answers`, async (t) => {
    const doc = await openapi(file);
    t.deepEqual(documentedRoutes(doc), Object.keys(routes).sort());
    const errorShape = await zodShape(errorBodySchema, 'output');
    for (const [route, contract] of Object.entries(routes)) {
      const [method, path] = route.split(' ') as [string, string];
      const op = (doc.paths as Record<string, Record<string, Json>>)[path]![method.toLowerCase()]!;
      t.is(op['x-scope'], contract.scope, `${route}: scope`);
      if (!contract.scope) t.deepEqual(op.security, [], `${route}: no authentication`);

      const body = op.requestBody as Json | undefined;
      t.is(body !== undefined, contract.body !== undefined, `${route}: a request body`);
      if (body && contract.body) {
        const [resolved, at] = await deref(body, file);
        const schema = ((resolved.content as Json)['application/json'] as Json).schema as Json;
        t.deepEqual(await shape(schema, at), await zodShape(contract.body, 'input'), `${route}: request body`);
      }
      const query = ((op.parameters as Json[] | undefined) ?? []).length === 0 ? [] : await Promise.all((op.parameters as Json[]).map((p) => deref(p, file)));
      t.deepEqual(query.filter(([p]) => p.in === 'query').map(([p]) => p.name).sort(), Object.keys(contract.query ?? {}).sort(), `${route}: query`);

      const responses = op.responses as Record<string, Json>;
      for (const status of Object.keys(contract.answers)) t.truthy(responses[status], `${route}: ${status} is documented`);
      for (const [status, response] of Object.entries(responses)) {
        const [resolved, at] = await deref(response, file);
        const content = resolved.content as Record<string, Json>;
        const answer = contract.answers[Number(status)];
        if (answer === 'text') {
          t.truthy(content['text/plain'], `${route}: ${status} is text`);
          continue;
        }
        const schema = content['application/json']?.schema as Json | undefined;
        t.truthy(schema, `${route}: ${status} is JSON`);
        // Any status the contract does not list is an error answer.
        t.deepEqual(await shape(schema!, at), answer ? await zodShape(answer, 'output') : errorShape, `${route}: ${status}`);
      }
    }
  });
}

test('the comparison of shapes sees a missing field, a required one, a type and an enum value', async (t) => {
  const base = await shape({ type: 'object', required: ['a'], properties: { a: { type: 'string' }, b: { enum: ['x', 'y'] } } }, undefined);
  const variants: Json[] = [
    { type: 'object', required: ['a'], properties: { a: { type: 'string' } } },
    { type: 'object', required: ['a', 'b'], properties: { a: { type: 'string' }, b: { enum: ['x', 'y'] } } },
    { type: 'object', required: ['a'], properties: { a: { type: ['string', 'null'] }, b: { enum: ['x', 'y'] } } },
    { type: 'object', required: ['a'], properties: { a: { type: 'string' }, b: { enum: ['x'] } } },
  ];
  for (const v of variants) t.notDeepEqual(await shape(v, undefined), base, JSON.stringify(v));
  t.deepEqual(await zodShape(z.looseObject({ a: z.string(), b: z.enum(['x', 'y']).optional() }), 'output'), base);
});

// ---- the gateway's lease parser ----

const host = generateEd25519('host');
const full = {
  container: 'vzsb-0007',
  address: '10.0.0.7',
  sshPort: 22,
  hostKey: host.publicKey,
  hostKeyFingerprint: host.fingerprint,
  user: 'alice',
  grantedAt: '2026-01-01T10:00:00.000Z',
  ms: 3.5,
  hit: true,
  renewed: false,
  sessions: 1,
  expiresAt: '2026-01-01T18:00:00.000Z',
  secondsLeft: 28800,
  hypervisor: 'hyp01',
};
const minimal = { container: full.container, address: full.address, sshPort: 22, hostKeyFingerprint: full.hostKeyFingerprint, user: 'alice' };
const without = (key: keyof typeof full) => Object.fromEntries(Object.entries(full).filter(([k]) => k !== key));

/** [what it is, the document]: valid ones, missing fields, wrong types and values, extra fields. */
const DOCUMENTS: [string, unknown][] = [
  ['a balancer lease', full],
  ['a lease with moved', { ...full, movedFrom: 'hyp02' }],
  ['a hypervisor lease (no hypervisor)', without('hypervisor')],
  ['only what a gateway needs', minimal],
  ['host key null', { ...full, hostKey: null }],
  ['no host key', without('hostKey')],
  ['secondsLeft null', { ...full, secondsLeft: null }],
  ['secondsLeft 0', { ...full, secondsLeft: 0 }],
  ['an IPv6 address', { ...full, address: 'fd00::7' }],
  ['a host name', { ...full, address: 'ct7.example' }],
  ['port 65535', { ...full, sshPort: 65535 }],
  ['extra fields', { ...full, shell: '/bin/sh', nested: { a: [1] } }],
  ['hypervisor of another type (ignored)', { ...full, hypervisor: 7 }],
  ['ms of another type (ignored)', { ...full, ms: 'fast' }],
  ['movedFrom of another type (ignored)', { ...full, movedFrom: false }],
  ['host key with a comment', { ...full, hostKey: `${host.publicKey} root@ct7` }],
  ...(['container', 'address', 'sshPort', 'hostKeyFingerprint', 'user'] as const).map((k): [string, unknown] => [`no ${k}`, without(k)]),
  ['container a number', { ...full, container: 7 }],
  ['container with a slash', { ...full, container: '../etc' }],
  ['container too long', { ...full, container: 'c'.repeat(65) }],
  ['address with a shell word', { ...full, address: '10.0.0.7; rm' }],
  ['address empty', { ...full, address: '' }],
  ['port 0', { ...full, sshPort: 0 }],
  ['port 65536', { ...full, sshPort: 65536 }],
  ['port 22.5', { ...full, sshPort: 22.5 }],
  ['port as a string', { ...full, sshPort: '22' }],
  ['an MD5 fingerprint', { ...full, hostKeyFingerprint: 'MD5:aa' }],
  ['a short fingerprint', { ...full, hostKeyFingerprint: 'SHA256:abc' }],
  ['user with capitals', { ...full, user: 'Alice' }],
  ['user null', { ...full, user: null }],
  ['host key not a key line', { ...full, hostKey: 'not-a-key' }],
  ['host key a number', { ...full, hostKey: 5 }],
  ['host key over two lines', { ...full, hostKey: `${host.publicKey} a\nb` }],
  ['secondsLeft negative', { ...full, secondsLeft: -1 }],
  ['secondsLeft a string', { ...full, secondsLeft: '60' }],
  ['null', null],
  ['an array', [full]],
  ['a string', 'vzsb-0007'],
  ['a number', 7],
];

/** What both readings keep, in the gateway's terms (an absent and a null value are both undefined). */
function kept(v: Record<string, unknown>): Record<string, unknown> {
  const keys = ['container', 'address', 'sshPort', 'hostKey', 'hostKeyFingerprint', 'user', 'hypervisor', 'ms', 'movedFrom', 'secondsLeft'];
  return Object.fromEntries(keys.map((k) => [k, v[k] ?? undefined]));
}

test("the gateway's lease parser accepts exactly the documents the contract's gateway schema accepts, and reads the same values", (t) => {
  let accepted = 0;
  for (const [what, doc] of DOCUMENTS) {
    const bySchema = gatewayLeaseSchema.safeParse(doc);
    let byGateway: Record<string, unknown> | undefined;
    try {
      byGateway = parseLease(doc, 'http://b') as unknown as Record<string, unknown>;
    } catch (err) {
      t.regex((err as Error).message, /^lease answer from http:\/\/b: /, what);
    }
    t.is(byGateway !== undefined, bySchema.success, `${what}: gateway ${byGateway ? 'accepts' : 'refuses'}, schema ${bySchema.success ? 'accepts' : 'refuses'}`);
    if (byGateway && bySchema.success) {
      accepted++;
      t.is(byGateway.balancer, 'http://b');
      t.deepEqual(kept(byGateway), kept(bySchema.data), what);
    }
  }
  t.true(accepted >= 10 && accepted < DOCUMENTS.length, 'the table has both kinds');
});

test("every lease the balancer's schema accepts, the gateway's schema accepts too", (t) => {
  for (const [what, doc] of DOCUMENTS) {
    if (balancedLeaseSchema.safeParse(doc).success) t.true(gatewayLeaseSchema.safeParse(doc).success, what);
  }
  t.true(balancedLeaseSchema.safeParse(full).success);
});

// ---- the admin client reads answers with the contract ----

test('vzsb pools/sessions: an answer of the wrong shape is refused, an error answer is its code, a partial reset is its results', async (t) => {
  const client = (url: string) => new AdminClient({ balancers: [url], token: 'admin-token-0123456789', timeoutMs: 20_000 });
  const wrong = await stubServer(t, reply(200, { time: 'now', hypervisors: 'many' }));
  await t.throwsAsync(client(wrong).pools(), { code: 'E_API', message: /unexpected answer \(HTTP 200\): hypervisors: .*totals: / } as never);
  const refused = await stubServer(t, reply(404, { error: { code: 'E_UNKNOWN_HYPERVISOR', message: 'no hypervisor named nope' } }));
  await t.throwsAsync(client(refused).reset('/v1/hypervisors/nope/reset', { force: false, wait: false }), { code: 'E_UNKNOWN_HYPERVISOR', message: /no hypervisor named nope/ } as never);
  const partial = { ok: false, results: [{ hypervisor: 'h1', status: 'failed', error: { code: 'E_HYPERVISOR_TIMEOUT', message: 'h1: no answer' } }] };
  const failing = await stubServer(t, reply(502, partial));
  const res = await client(failing).reset('/v1/reset', { force: false, wait: false });
  t.is(res.status, 502);
  t.deepEqual(res.body, partial);
  const sessions = await stubServer(t, reply(200, { time: 'now', sessions: [{ user: 'alice' }], unavailable: [] }));
  await t.throwsAsync(client(sessions).sessions(), { code: 'E_API', message: /sessions\[0\]\.container/ } as never);
});
