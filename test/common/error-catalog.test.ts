import test from 'ava';
import Koa from 'koa';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { ERROR_CATALOG, commonHttpStatus, httpAnswer, httpStatusTable, isConfigurationError, isErrorCode, type Daemon, type ErrorCode } from '../../src/common/error-catalog.js';
import { VzsbError } from '../../src/common/errors.js';
import { HypervisorCallError, HypervisorClient } from '../../src/daemons/balancer/hypervisor-client.js';
import { errorMiddleware } from '../../src/daemons/common/http.js';
import { releaseLease, requestLease } from '../../src/shell/balancer-client.js';
import { studentLine } from '../../src/shell/student-message.js';
import { expectedDocs } from '../../scripts/error-docs.js';
import { captureLog } from '../helpers/daemons.js';
import { reply, stubServer } from '../helpers/http-stub.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const CATALOG_FILE = 'src/common/error-catalog.ts';
/** A code as it is written anywhere: E_ and capitals, not inside a longer name (HPE_..., ERR_...). */
const CODE = /(?<![A-Za-z0-9_])E_[A-Z][A-Z0-9_]*/g;

function files(dir: string, ext: string): string[] {
  return readdirSync(join(ROOT, dir), { recursive: true, withFileTypes: true })
    .filter((d) => d.isFile() && d.name.endsWith(ext))
    .map((d) => join(d.parentPath, d.name).slice(ROOT.length));
}

/** The code of a source file without its comments (a code named only in a comment is not used). */
function withoutComments(text: string): string {
  return text
    .replace(/\/\*[\s\S]*?\*\//g, '')
    .split('\n')
    .map((line) => line.replace(/(^|\s)\/\/.*$/, ''))
    .join('\n');
}

const sources = files('src', '.ts').filter((f) => f !== CATALOG_FILE);

test('every code written in src/ and the docs is in the catalog', (t) => {
  const unknown: string[] = [];
  const docs = [...files('docs', '.md'), ...files('docs/api', '.yaml'), 'README.md'];
  for (const file of [...sources, ...docs]) {
    for (const [code] of readFileSync(join(ROOT, file), 'utf8').matchAll(CODE)) {
      if (!isErrorCode(code)) unknown.push(`${file}: ${code}`);
    }
  }
  t.deepEqual(unknown, []);
});

test('every catalog code is used in src/ outside the catalog (or is what the gateway reports for one)', (t) => {
  const used = new Set<string>();
  for (const file of sources) for (const [code] of withoutComments(readFileSync(join(ROOT, file), 'utf8')).matchAll(CODE)) used.add(code);
  for (const entry of Object.values(ERROR_CATALOG)) if (entry.balancer?.gatewayCode) used.add(entry.balancer.gatewayCode);
  t.deepEqual(
    Object.keys(ERROR_CATALOG).filter((c) => !used.has(c)),
    [],
  );
});

test('docs/errors.md and the student table of docs/gateway.md are generated from the catalog (npm run docs:errors)', (t) => {
  for (const [path, text] of Object.entries(expectedDocs())) t.is(readFileSync(join(ROOT, path), 'utf8'), text, `${path} is out of date`);
});

test('a code the OpenAPI files give a status has that status in the catalog for that daemon', (t) => {
  const checked: string[] = [];
  const problems: string[] = [];
  for (const daemon of ['hypervisor', 'balancer'] as const) {
    const doc = parse(readFileSync(join(ROOT, `docs/api/${daemon}.openapi.yaml`), 'utf8')) as OpenApi;
    for (const [status, code, where] of documentedCodes(doc, daemon)) {
      checked.push(`${daemon} ${code}`);
      const answer = httpAnswer(daemon, code);
      if (answer?.status !== status) problems.push(`${where}: ${status} ${code}, the catalog has ${answer ? answer.status : 'no answer'} for the ${daemon}`);
    }
  }
  t.deepEqual(problems, []);
  t.true(checked.includes('hypervisor E_RENEW_FAILED') && checked.includes('balancer E_HOLDER_DOWN'), 'the check sees the response descriptions');
});

type Responses = Record<string, { description?: string; $ref?: string }>;
interface OpenApi {
  paths: Record<string, Record<string, { responses?: Responses }>>;
  components?: { responses?: Responses };
}

/** [status, code, where] for every `E_CODE`: that opens a clause of a response's description. */
function* documentedCodes(doc: OpenApi, daemon: Daemon): Generator<[number, string, string]> {
  const components = (file: string): Responses => (file === '' ? (doc.components?.responses ?? {}) : (parse(readFileSync(join(ROOT, 'docs/api', file), 'utf8')) as OpenApi).components?.responses ?? {});
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        let description = response.description;
        if (response.$ref) {
          const [file = '', name = ''] = response.$ref.split('#/components/responses/');
          description = components(file)[name]?.description;
        }
        for (const [, code] of (description ?? '').matchAll(/`(E_[A-Z0-9_]+)`:/g)) yield [Number(status), code!, `${daemon} ${method.toUpperCase()} ${path}`];
      }
    }
  }
}

test('the daemons answer what they answered before the catalog, and the balancer still answers a renewal failure with 503', (t) => {
  // The tables of daemons/common/http.ts, hypervisor/app.ts and balancer/app.ts before they
  // were derived; E_CONFLICT (never raised) is gone, the parser's codes and E_INTERNAL joined.
  const common = { E_INVALID: 400, E_BAD_JSON: 400, E_ABORTED: 400, E_UNAUTHORIZED: 401, E_FORBIDDEN: 403, E_NOT_FOUND: 404, E_METHOD: 405, E_DUPLICATE_KEY: 400, E_BODY_TOO_LARGE: 413, E_URI_TOO_LONG: 414, E_MEDIA_TYPE: 415, E_SHUTTING_DOWN: 503 };
  const parser = { E_BAD_REQUEST: 400, E_TIMEOUT: 408, E_HEADERS_TOO_LARGE: 431, E_INTERNAL: 500 };
  const hypervisor = { E_POOL_FULL: 503, E_LEASE_FAILED: 503, E_NO_LEASE: 404, E_IN_USE: 409, E_RENEW_FAILED: 409, E_STATE_UNWRITABLE: 503, E_DEGRADED: 503, E_TOO_MANY: 409, E_HELD_HERE: 409 };
  // E_PARTIAL: the status of a reset report with that error (balancer/app.ts, the second table).
  const balancer = { E_POOL_FULL: 503, E_LEASE_FAILED: 503, E_NO_HYPERVISOR: 503, E_HYPERVISOR_UNREACHABLE: 503, E_NO_LEASE: 404, E_UNKNOWN_HYPERVISOR: 404, E_IN_USE: 409, E_RENEW_FAILED: 503, E_TOO_MANY: 409, E_BUSY: 503, E_HOLDER_DOWN: 503, E_PARTIAL: 502 };
  t.deepEqual(httpStatusTable('hypervisor'), { ...common, ...parser, ...hypervisor });
  t.deepEqual(httpStatusTable('balancer'), { ...common, ...parser, ...balancer });
  for (const code of ['E_BAD_REQUEST', 'E_URI_TOO_LONG', 'E_HEADERS_TOO_LARGE', 'E_TIMEOUT'] as const) t.is(typeof commonHttpStatus(code), 'number');
  t.throws(() => commonHttpStatus('E_RENEW_FAILED'));
});

test('the configuration errors (exit 1 for a daemon, the session agent or an instructor command) are those it was before', (t) => {
  t.deepEqual(Object.keys(ERROR_CATALOG).filter(isConfigurationError), ['E_INVALID', 'E_CONFIG']);
  t.false(isConfigurationError('E_LISTEN'));
  t.false(isConfigurationError(undefined));
});

test('the error middleware answers a code with its daemon status, and masks what no code covers', async (t) => {
  const log = captureLog();
  const app = (daemon: Daemon, err: Error) => {
    const koa = new Koa();
    koa.silent = true;
    koa.use(errorMiddleware({ logger: log.logger, daemon }));
    koa.use(() => {
      throw err;
    });
    return stubServer(t, koa.callback());
  };
  const ask = async (url: string) => {
    const res = await fetch(url);
    return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
  };
  const renew = new VzsbError('E_RENEW_FAILED', 'kept, try again');
  t.like(await ask(await app('hypervisor', renew)), { status: 409, body: { error: { code: 'E_RENEW_FAILED', message: 'kept, try again' } } });
  t.like(await ask(await app('balancer', renew)), { status: 503, body: { error: { code: 'E_RENEW_FAILED', message: 'kept, try again' } } });
  // A hypervisor's code the balancer does not answer itself: a 500 that says nothing more.
  const held = await ask(await app('balancer', new VzsbError('E_HELD_HERE', 'user kate holds a lease on hyp1 (vzsb-0003)')));
  t.is(held.status, 500);
  t.is(held.body.error.code, 'E_INTERNAL');
  t.notRegex(held.body.error.message, /kate/);
  const internal = await ask(await app('hypervisor', new VzsbError('E_INTERNAL', 'secret internals')));
  t.is(internal.status, 500);
  t.notRegex(internal.body.error.message, /secret/);
});

test('the balancer tries another hypervisor after the answers the catalog says, and by status after an unknown code', (t) => {
  const cases: [ErrorCode, number, boolean][] = [
    ['E_POOL_FULL', 503, true],
    ['E_LEASE_FAILED', 503, true],
    ['E_DEGRADED', 503, true],
    ['E_STATE_UNWRITABLE', 503, true],
    ['E_SHUTTING_DOWN', 503, true],
    ['E_INTERNAL', 500, true],
    ['E_UNAUTHORIZED', 401, true],
    ['E_FORBIDDEN', 403, true],
    ['E_NO_LEASE', 404, false],
    ['E_NOT_FOUND', 404, false],
    ['E_IN_USE', 409, false],
    ['E_RENEW_FAILED', 409, false],
    ['E_TOO_MANY', 409, false],
    ['E_HELD_HERE', 409, false],
    ['E_INVALID', 400, false],
    ['E_TIMEOUT', 408, false],
    ['E_HTTP', 502, true],
    ['E_HTTP', 422, false],
    ['E_HTTP', 401, true],
  ];
  for (const [code, status, retryable] of cases) t.is(new HypervisorCallError('h1', 'http', code, 'x', status).retryable, retryable, `${status} ${code}`);
  t.true(new HypervisorCallError('h1', 'unreachable', 'E_HYPERVISOR_UNREACHABLE', 'x').retryable);
  t.true(new HypervisorCallError('h1', 'bad-response', 'E_HYPERVISOR_BAD_RESPONSE', 'x', 200).retryable);
});

test('a hypervisor answer with a code this version does not know is E_HTTP, its code kept in the message', async (t) => {
  const answers: [number, unknown][] = [
    [409, { error: { code: 'E_FROM_THE_FUTURE', message: 'new words' } }],
    [502, { oops: true }],
    [409, { error: { code: 'E_IN_USE', message: 'container vzsb-0001 is in use' } }],
  ];
  let next = 0;
  const url = await stubServer(t, (req, res) => {
    const [status, body] = answers[next++]!;
    reply(status, body)(req, res);
  });
  const client = new HypervisorClient({ name: 'h1', url, token: 'x'.repeat(32) });
  const failure = async () => (await t.throwsAsync(client.leases(2000))) as HypervisorCallError;
  t.like(await failure(), { code: 'E_HTTP', status: 409, message: 'h1: HTTP 409 E_FROM_THE_FUTURE: new words', retryable: false });
  t.like(await failure(), { code: 'E_HTTP', status: 502, message: 'h1: HTTP 502', retryable: true });
  t.like(await failure(), { code: 'E_IN_USE', status: 409, message: 'h1: container vzsb-0001 is in use', retryable: false });
});

/** What the gateway does with one balancer answer when a second balancer would grant: 'retried', 'waited' (and retried), or the code the login ends with. */
test('the gateway stops, waits or asks the next balancer as the catalog says, and ends the login with the student code', async (t) => {
  const lease = { container: 'vzsb-0001', address: '10.0.0.5', sshPort: 22, hostKeyFingerprint: 'SHA256:' + 'A'.repeat(43), user: 'kate', hypervisor: 'h1' };
  const second = await stubServer(t, reply(200, lease));
  const cases: [number, string | undefined, string][] = [
    [503, 'E_POOL_FULL', 'E_NO_CAPACITY'],
    [409, 'E_TOO_MANY', 'E_TOO_MANY'],
    [401, 'E_UNAUTHORIZED', 'E_GATEWAY_AUTH'],
    [403, 'E_FORBIDDEN', 'E_GATEWAY_AUTH'],
    [401, undefined, 'E_GATEWAY_AUTH'],
    [400, 'E_INVALID', 'E_LEASE_REFUSED'],
    [409, 'E_IN_USE', 'E_LEASE_REFUSED'],
    [422, 'E_FROM_THE_FUTURE', 'E_LEASE_REFUSED'],
    [503, 'E_NO_HYPERVISOR', 'retried'],
    [503, 'E_LEASE_FAILED', 'retried'],
    [503, 'E_RENEW_FAILED', 'retried'],
    [503, 'E_SHUTTING_DOWN', 'retried'],
    [500, 'E_INTERNAL', 'retried'],
    [404, 'E_NOT_FOUND', 'retried'],
    [408, 'E_TIMEOUT', 'retried'],
    [502, 'E_FROM_THE_FUTURE', 'retried'],
    [429, undefined, 'retried'],
    [503, 'E_BUSY', 'waited'],
    [503, 'E_HOLDER_DOWN', 'waited'],
  ];
  for (const [status, code, expected] of cases) {
    const first = await stubServer(t, reply(status, code ? { error: { code, message: 'words' } } : {}));
    const waits: string[] = [];
    const failovers: string[] = [];
    const options = { balancers: [first, second], token: 't'.repeat(32), connectTimeoutMs: 1000, requestTimeoutMs: 2000, onWait: (c: string) => waits.push(c), onFailover: (b: string) => failovers.push(b) };
    const outcome = await requestLease(options, 'kate', 'ssh-ed25519 AAAA', 5000).then(
      (l) => (l.balancer === second ? (waits.length > 0 ? 'waited' : failovers.length > 0 ? 'retried' : 'second without a failover') : 'first granted'),
      (err: unknown) => (err instanceof VzsbError ? err.code : String(err)),
    );
    t.is(outcome, expected, `${status} ${code ?? '(no code)'}`);
  }
});

test('a release is done on 404, and the gateway names a balancer that is down with its own code', async (t) => {
  const gone = await stubServer(t, reply(404, { error: { code: 'E_NO_LEASE', message: 'none' } }));
  t.is(await releaseLease({ balancers: [gone], token: 't'.repeat(32), connectTimeoutMs: 500, requestTimeoutMs: 500 }, 'kate', undefined, 2000), gone);
  const down = await stubServer(t, reply(503, { error: { code: 'E_SHUTTING_DOWN', message: 'stopping' } }));
  const err = await t.throwsAsync(releaseLease({ balancers: [down], token: 't'.repeat(32), connectTimeoutMs: 200, requestTimeoutMs: 200 }, 'kate', undefined, 300));
  t.is((err as VzsbError).code, 'E_RELEASE_FAILED');
});

test("the student's line is the catalog's sentence and code; a code without a sentence is E_INTERNAL", (t) => {
  for (const [code, entry] of Object.entries(ERROR_CATALOG) as [ErrorCode, (typeof ERROR_CATALOG)[ErrorCode]][]) {
    const line = studentLine(new VzsbError(code, 'internal words'));
    if (entry.student === undefined) t.is(line, studentLine(new Error('x')), code);
    else if (code === 'E_USAGE') t.is(line, `vzsb: ${entry.student} (internal words) [E_USAGE]\n`);
    else t.is(line, `vzsb: ${entry.student} [${code}]\n`, code);
  }
  t.is(studentLine(new Error('x')), `vzsb: ${ERROR_CATALOG.E_INTERNAL.student} [E_INTERNAL]\n`);
});

test('every catalog entry says what it means; a gateway code is a code; a wait is a 503', (t) => {
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
    t.true(entry.admin.length > 10, code);
    for (const daemon of ['hypervisor', 'balancer'] as const) {
      const answer = entry[daemon];
      if (!answer) continue;
      t.true(answer.status >= 400 && answer.status < 600, `${daemon} ${code}`);
      if (answer.gatewayCode !== undefined) t.true(isErrorCode(answer.gatewayCode) && ERROR_CATALOG[answer.gatewayCode].student !== undefined, `${code} -> ${answer.gatewayCode}`);
      if (answer.retry === 'wait') t.is(answer.status, 503, code);
    }
  }
});
