import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import Koa, { type Context, type Middleware } from 'koa';
import { z } from 'zod';
import type { ErrorBody } from '../../api/v1/fields.js';
import { httpStatusTable, type Daemon } from '../../common/error-catalog.js';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { InputError, parseInput } from '../../common/validate.js';
import { httpMetricsMiddleware, type DaemonMetrics } from './metrics.js';

/**
 * What every daemon API shares: error bodies `{error: {code, message}}` with the HTTP status
 * the error catalog gives the code for this daemon, JSON request bodies read with a size limit and validated with zod.
 * A 5xx body never carries internals: the client gets a request id, the log gets the rest.
 */
export interface ErrorMiddlewareOptions {
  logger: Logger;
  /** Whose codes and statuses (the error catalog's answers of this daemon). */
  daemon: Daemon;
}

export function errorMiddleware(options: ErrorMiddlewareOptions): Middleware {
  const table = httpStatusTable(options.daemon);
  return async (ctx, next) => {
    const requestId = randomUUID();
    const started = performance.now();
    ctx.set('X-Request-Id', requestId);
    try {
      await next();
      if (ctx.status === 404 && ctx.body === undefined) {
        throw new VzsbError('E_NOT_FOUND', `no route ${ctx.method} ${ctx.path}`);
      }
    } catch (err) {
      const status = err instanceof VzsbError ? (table[err.code] ?? 500) : httpStatusOf(err);
      ctx.status = status;
      if (status >= 500) {
        options.logger.error('http.error', { requestId, method: ctx.method, path: ctx.path, error: err });
        // A thrown E_INTERNAL is masked as well: its message was never meant for a client.
        const known = err instanceof VzsbError && table[err.code] !== undefined && err.code !== 'E_INTERNAL';
        ctx.body = {
          error: known
            ? { code: (err as VzsbError).code, message: (err as VzsbError).message, requestId }
            : { code: 'E_INTERNAL', message: `internal error; the daemon log has the details (request ${requestId})`, requestId },
        } satisfies ErrorBody;
      } else {
        const code = err instanceof VzsbError ? err.code : status === 405 ? 'E_METHOD' : 'E_HTTP';
        const body: ErrorBody = { error: { code, message: err instanceof Error && (err instanceof VzsbError || (err as { expose?: boolean }).expose) ? err.message : 'bad request' } };
        if (err instanceof InputError) body.error.issues = err.issues;
        ctx.body = body;
        if (status === 413 || status === 414) closeAfterAnswer(ctx);
        options.logger.info('http.rejected', { requestId, method: ctx.method, path: ctx.path, status, code });
      }
    } finally {
      options.logger.debug('http.request', { requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) });
    }
  };
}

/**
 * The rest of an oversize request is never read: the answer says Connection: close, and the
 * socket ends once the answer is out (destroyed 2 s later if the client still sends).
 */
function closeAfterAnswer(ctx: Context): void {
  ctx.set('Connection', 'close');
  const sock = ctx.req.socket ?? ctx.res.socket;
  if (!sock) return;
  ctx.res.once('finish', () => {
    sock.end();
    setTimeout(() => sock.destroy(), 2000).unref();
  });
}

/** koa/http-errors carry `status`; anything else is a 500. */
function httpStatusOf(err: unknown): number {
  const s = (err as { status?: unknown; statusCode?: unknown })?.status ?? (err as { statusCode?: unknown })?.statusCode;
  return typeof s === 'number' && s >= 400 && s < 600 ? s : 500;
}

/** Read the request body as JSON (at most `limit` bytes) and validate it; an empty body is `{}`. */
export async function readJson<S extends z.ZodType>(ctx: Context, schema: S, limit: number): Promise<z.infer<S>> {
  const type = ctx.get('content-type');
  const declared = Number(ctx.get('content-length') || NaN);
  if (declared > limit) throw tooLarge(limit);
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size > limit) throw tooLarge(limit);
      chunks.push(chunk);
    }
  } catch (err) {
    if (err instanceof VzsbError) throw err;
    // The client went away while sending: its problem, not the daemon's.
    throw new VzsbError('E_ABORTED', `the request body was cut off: ${(err as Error).message}`);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  let value: unknown = {};
  if (text.trim() !== '') {
    if (type && !/^application\/(.+\+)?json\b/i.test(type)) throw new VzsbError('E_MEDIA_TYPE', `expected Content-Type: application/json, got ${type}`);
    try {
      value = JSON.parse(text);
    } catch (err) {
      throw new VzsbError('E_BAD_JSON', `request body is not valid JSON: ${(err as Error).message}`);
    }
    // JSON.parse keeps the last of two equal keys: {"user":"a","user":"root"} must not mean root.
    const dup = duplicateKey(text);
    if (dup !== undefined) throw new VzsbError('E_DUPLICATE_KEY', `request body: duplicate key ${JSON.stringify(dup.key)} at ${dup.path || '(root)'}`);
  }
  return parseInput(schema, value, 'request body');
}

function tooLarge(limit: number): VzsbError {
  return new VzsbError('E_BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
}

/**
 * The first key that appears twice in one object of a JSON text (valid JSON: JSON.parse
 * accepted it), with the dotted path of that object; undefined when there is none.
 */
export function duplicateKey(text: string): { key: string; path: string } | undefined {
  type Frame = { keys: Set<string> | undefined; expectKey: boolean; path: string; index: number; lastKey?: string };
  const stack: Frame[] = [];
  const childPath = (): string => {
    const top = stack[stack.length - 1];
    if (!top) return '';
    const part = top.keys ? (top.lastKey ?? '') : `[${top.index}]`;
    return top.keys ? (top.path ? `${top.path}.${part}` : part) : `${top.path}${part}`;
  };
  for (let i = 0; i < text.length; i++) {
    const ch = text[i];
    if (ch === '{' || ch === '[') {
      const path = childPath();
      stack.push({ keys: ch === '{' ? new Set() : undefined, expectKey: ch === '{', path, index: 0 });
    } else if (ch === '}' || ch === ']') {
      stack.pop();
    } else if (ch === ',') {
      const top = stack[stack.length - 1];
      if (top?.keys) top.expectKey = true;
      else if (top) top.index++;
    } else if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top?.keys && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1)) as string;
        if (top.keys.has(key)) return { key, path: top.path };
        top.keys.add(key);
        top.lastKey = key;
        top.expectKey = false;
      }
      i = j;
    }
  }
  return undefined;
}

/** Methods the daemons know; anything else (TRACE, CONNECT, made-up ones) is 405 at once. */
const KNOWN_METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** Longer request targets are 414 (Node's header limit answers longer ones still, see serve.ts). */
export const MAX_URL_LENGTH = 8192;

/** Refuse what no route can take before routing: unknown methods (405) and overlong URLs (414). */
export function strictRequestMiddleware(): Middleware {
  return async (ctx, next) => {
    if (ctx.url.length > MAX_URL_LENGTH) throw new VzsbError('E_URI_TOO_LONG', `the request URL is longer than ${MAX_URL_LENGTH} bytes`);
    if (!KNOWN_METHODS.has(ctx.method)) {
      ctx.set('Allow', [...KNOWN_METHODS].join(', '));
      throw new VzsbError('E_METHOD', `method ${ctx.method} is not allowed`);
    }
    await next();
  };
}

/** Validate a route parameter; the error names it ("URL path: user: ..."). */
export function param<S extends z.ZodType>(ctx: Context & { params?: Record<string, string> }, name: string, schema: S): z.infer<S> {
  const parsed = parseInput(z.object({ [name]: schema }), { [name]: ctx.params?.[name] }, 'URL path') as Record<string, unknown>;
  return parsed[name] as z.infer<S>;
}

/**
 * A daemon's Koa app around its router: request metrics outermost (they see the final
 * status), then the error bodies, then the routes; 405/501 for known paths with other methods.
 */
export function createDaemonApp(options: {
  router: Router;
  logger: Logger;
  metrics: DaemonMetrics;
  daemon: Daemon;
}): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.on('error', (err) => options.logger.error('http.unhandled', { error: err }));
  app.use(httpMetricsMiddleware(options.metrics));
  app.use(errorMiddleware({ logger: options.logger, daemon: options.daemon }));
  app.use(strictRequestMiddleware());
  app.use(options.router.routes());
  app.use(options.router.allowedMethods({ throw: true }));
  return app;
}
