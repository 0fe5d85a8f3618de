import type { Middleware } from 'koa';
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { AuthFailure } from './auth.js';

/**
 * Prometheus metrics every daemon has: one registry per app (tests run several in one
 * process), process metrics, HTTP requests by route and status, authentication failures.
 * A daemon adds its own metrics to `registry`.
 */
export interface DaemonMetrics {
  registry: Registry;
  prefix: string;
  authFailures: Counter<'scope' | 'reason'>;
  httpRequests: Counter<'method' | 'route' | 'status'>;
  httpDuration: Histogram<'route'>;
}

export function createDaemonMetrics(prefix: string, options: { processMetrics?: boolean } = {}): DaemonMetrics {
  const registry = new Registry();
  if (options.processMetrics !== false) collectDefaultMetrics({ register: registry, prefix: `${prefix}_` });
  return {
    registry,
    prefix,
    authFailures: new Counter({
      name: `${prefix}_auth_failures_total`,
      help: 'Requests refused for a missing or invalid token (401) or a token without the scope (403)',
      labelNames: ['scope', 'reason'],
      registers: [registry],
    }),
    httpRequests: new Counter({
      name: `${prefix}_http_requests_total`,
      help: 'HTTP requests by route and status',
      labelNames: ['method', 'route', 'status'],
      registers: [registry],
    }),
    httpDuration: new Histogram({
      name: `${prefix}_http_request_duration_seconds`,
      help: 'HTTP request duration by route',
      labelNames: ['route'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}

/** Count every request under its route pattern (not the raw path: user names stay out of labels). */
export function httpMetricsMiddleware(metrics: DaemonMetrics): Middleware {
  return async (ctx, next) => {
    const end = metrics.httpDuration.startTimer();
    try {
      await next();
    } finally {
      const route = (ctx as { _matchedRoute?: unknown })._matchedRoute;
      const label = typeof route === 'string' ? route : 'unmatched';
      end({ route: label });
      metrics.httpRequests.inc({ method: ctx.method, route: label, status: String(ctx.status) });
    }
  };
}

export function countAuthFailure(metrics: DaemonMetrics): (reason: AuthFailure, scope: string) => void {
  return (reason, scope) => metrics.authFailures.inc({ scope, reason });
}

/** GET /metrics body in the Prometheus text format. */
export function metricsHandler(metrics: DaemonMetrics): Middleware {
  return async (ctx) => {
    ctx.set('Content-Type', metrics.registry.contentType);
    ctx.body = await metrics.registry.metrics();
  };
}
