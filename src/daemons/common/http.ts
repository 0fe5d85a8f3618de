import { randomUUID } from 'node:crypto';
import type Router from '@koa/router';
import Koa, { type Context, type Middleware } from 'koa';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { InputError, parseInput } from '../../common/validate.js';
import { httpMetricsMiddleware, type DaemonMetrics } from './metrics.js';

/**
 * What every daemon API shares: error bodies `{error: {code, message}}`, one table from error
 * code to HTTP status, JSON request bodies read with a size limit and validated with zod.
 * A 5xx body never carries internals: the client gets a request id, the log gets the rest.
 */
export interface ErrorBody {
  error: { code: string; message: string; requestId?: string; issues?: { path: string; message: string }[] };
}

const COMMON_STATUS: Record<string, number> = {
  E_INVALID: 400,
  E_BAD_JSON: 400,
  E_ABORTED: 400,
  E_UNAUTHORIZED: 401,
  E_FORBIDDEN: 403,
  E_NOT_FOUND: 404,
  E_METHOD: 405,
  E_CONFLICT: 409,
  E_BODY_TOO_LARGE: 413,
  E_MEDIA_TYPE: 415,
  E_SHUTTING_DOWN: 503,
};

export interface ErrorMiddlewareOptions {
  logger: Logger;
  /** Daemon-specific codes and their status, added to the common ones. */
  statusByCode?: Record<string, number>;
}

export function errorMiddleware(options: ErrorMiddlewareOptions): Middleware {
  const table = { ...COMMON_STATUS, ...options.statusByCode };
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
        options.logger.error('http.error', { requestId, method: ctx.method, path: ctx.path, error: err, stack: err instanceof Error ? err.stack : undefined });
        const known = err instanceof VzsbError && table[err.code] !== undefined;
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
        options.logger.info('http.rejected', { requestId, method: ctx.method, path: ctx.path, status, code });
      }
    } finally {
      options.logger.debug('http.request', { requestId, method: ctx.method, path: ctx.path, status: ctx.status, ms: Math.round(performance.now() - started) });
    }
  };
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
  }
  return parseInput(schema, value, 'request body');
}

function tooLarge(limit: number): VzsbError {
  return new VzsbError('E_BODY_TOO_LARGE', `request body is larger than ${limit} bytes`);
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
  statusByCode?: Record<string, number>;
}): Koa {
  const app = new Koa();
  app.proxy = false;
  app.silent = true;
  app.on('error', (err) => options.logger.error('http.unhandled', { error: err }));
  app.use(httpMetricsMiddleware(options.metrics));
  app.use(errorMiddleware({ logger: options.logger, statusByCode: options.statusByCode }));
  app.use(options.router.routes());
  app.use(options.router.allowedMethods({ throw: true }));
  return app;
}
