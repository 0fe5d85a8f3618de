import Router from '@koa/router';
import type Koa from 'koa';
import { httpAnswer } from '../../common/error-catalog.js';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { requireScope, TokenAuth, type Scope } from '../common/auth.js';
import type { Clock } from '../common/clock.js';
import { parseInput } from '../../common/validate.js';
import { createDaemonApp, param, readJson } from '../common/http.js';
import { countAuthFailure, metricsHandler } from '../common/metrics.js';
import * as v1 from '../../api/v1/balancer.js';
import { hypervisorNameSchema, sessionIdSchema, userNameSchema } from '../../api/v1/fields.js';
import { leaseRequestSchema, resetRequestSchema } from '../../api/v1/hypervisor.js';
import type { BalancerConfig } from './config.js';
import type { Fanout } from './fanout.js';
import type { HealthMonitor } from './health.js';
import type { LeaseRouter } from './lease-router.js';
import type { BalancerMetrics } from './metrics.js';

/**
 * The balancer's HTTP API v1 (docs/api/balancer.openapi.yaml; its shapes are src/api/v1/balancer.ts,
 * and every answer here `satisfies` them). The lease routes have the
 * hypervisor's shape (plus `hypervisor` in the answer), so a gateway can talk to either.
 * A factory: `serve` opens the port. Every route but /healthz needs a token of its scope.
 */
export interface BalancerAppDeps {
  config: Pick<BalancerConfig, 'tokens' | 'bodyLimitBytes' | 'hypervisors'>;
  router: LeaseRouter;
  fanout: Fanout;
  health: HealthMonitor;
  clock: Clock;
  logger: Logger;
  metrics: BalancerMetrics;
}


export function createBalancerApp(deps: BalancerAppDeps): Koa {
  const { config, logger, metrics, health, fanout } = deps;
  const auth = new TokenAuth<Scope>(config.tokens);
  const onAuthFailure = countAuthFailure(metrics.daemon);
  const scope = (s: Scope) =>
    requireScope(auth, s, (reason, sc) => {
      onAuthFailure(reason, sc);
      logger.warn('auth.refused', { scope: sc, reason });
    });
  const limit = config.bodyLimitBytes;
  const names = new Set(config.hypervisors.map((h) => h.name));

  const router = new Router();

  router.get('/healthz', (ctx) => {
    const all = health.all();
    const up = all.filter((h) => h.up).length;
    ctx.body = { status: up > 0 ? 'ok' : 'degraded', hypervisors: { up, total: all.length }, time: new Date(deps.clock.now()).toISOString() } satisfies v1.BalancerHealth;
  });

  router.post('/v1/leases', scope('lease'), async (ctx) => {
    const body = await readJson(ctx, leaseRequestSchema, limit);
    try {
      ctx.body = (await deps.router.lease(body)) satisfies v1.BalancedLease;
    } catch (err) {
      if (err instanceof VzsbError && httpAnswer('balancer', err.code)?.retry === 'wait') ctx.set('Retry-After', '1');
      throw err;
    }
  });

  router.delete('/v1/leases/:user', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const session = ctx.query.session === undefined ? undefined : parseInput(sessionIdSchema, ctx.query.session, 'query: session');
    ctx.body = (await deps.router.release(user, session)) satisfies v1.BalancedRelease;
  });

  router.get('/v1/pools', scope('admin'), async (ctx) => {
    ctx.body = (await fanout.pools()) satisfies v1.PoolsReport;
  });

  router.get('/v1/sessions', scope('admin'), async (ctx) => {
    ctx.body = (await fanout.sessions()) satisfies v1.SessionsReport;
  });

  const answer = (ctx: Koa.Context, report: v1.FanoutReport) => {
    ctx.status = report.ok ? 200 : (httpAnswer('balancer', report.error?.code)?.status ?? 502);
    ctx.body = report;
  };

  router.post('/v1/reset', scope('admin'), async (ctx) => {
    const body = await readJson(ctx, resetRequestSchema, limit);
    answer(ctx, await fanout.resetPools(body));
  });

  router.post('/v1/hypervisors/:name/reset', scope('admin'), async (ctx) => {
    const name = param(ctx, 'name', hypervisorNameSchema);
    const body = await readJson(ctx, resetRequestSchema, limit);
    if (!names.has(name)) throw new VzsbError('E_UNKNOWN_HYPERVISOR', `no hypervisor named ${name} in this balancer's configuration (known: ${[...names].join(', ')})`);
    answer(ctx, await fanout.resetPools(body, name));
  });

  router.post('/v1/users/:user/reset', scope('admin'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const body = await readJson(ctx, resetRequestSchema, limit);
    answer(ctx, await fanout.resetUser(user, body));
  });

  router.get('/metrics', scope('metrics'), metricsHandler(metrics.daemon));

  return createDaemonApp({ router, logger, metrics: metrics.daemon, daemon: 'balancer' });
}
