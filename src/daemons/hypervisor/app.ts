import Router from '@koa/router';
import type Koa from 'koa';
import type { Logger } from '../../common/log.js';
import { requireScope, TokenAuth, type Scope } from '../common/auth.js';
import type { Clock } from '../common/clock.js';
import { parseInput } from '../../common/validate.js';
import { createDaemonApp, param, readJson } from '../common/http.js';
import { countAuthFailure, metricsHandler } from '../common/metrics.js';
import type { ContainerDriver } from '../drivers/types.js';
import type { HypervisorConfig } from './config.js';
import { HypervisorHealth } from './health.js';
import { HypervisorMetrics } from './metrics.js';
import { containerIdSchema, emptyRequestSchema, sessionIdSchema, userNameSchema } from '../../api/v1/fields.js';
import * as v1 from '../../api/v1/hypervisor.js';
import type { Pool } from './pool.js';

/**
 * The hypervisor's HTTP API v1 (docs/api/hypervisor.openapi.yaml; what each route takes and
 * answers is src/api/v1/hypervisor.ts, and every answer here `satisfies` it). A factory: it opens no
 * port; `serve` (../common/serve.ts) does. Every route but /healthz needs a bearer token
 * with the route's scope.
 */
export interface HypervisorAppDeps {
  driver: ContainerDriver;
  pool: Pool;
  clock: Clock;
  logger: Logger;
  config: HypervisorConfig;
  metrics?: HypervisorMetrics;
  /** What /healthz reports (default: made from the driver, the pool and `config.health`). */
  health?: HypervisorHealth;
  /** What POST /v1/reclaim runs: the reclaim job (shared with the schedule so passes never overlap). */
  reclaimNow?: () => Promise<v1.ReclaimReport>;
}

export function createHypervisorApp(deps: HypervisorAppDeps): Koa {
  const { pool, config, logger } = deps;
  const metrics = deps.metrics ?? new HypervisorMetrics({ processMetrics: false });
  metrics.watch(() => pool.capacity());
  const auth = new TokenAuth<Scope>(config.tokens);
  const onAuthFailure = countAuthFailure(metrics.daemon);
  const scope = (s: Scope) => requireScope(auth, s, (reason, sc) => {
    onAuthFailure(reason, sc);
    logger.warn('auth.refused', { scope: sc, reason });
  });
  const limit = config.bodyLimitBytes;
  const reclaimNow = deps.reclaimNow ?? (() => pool.reclaim());

  const router = new Router();

  const health =
    deps.health ??
    new HypervisorHealth({
      driver: deps.driver,
      pool,
      config: { minFreeBytes: config.health.minFreeMiB * 1048576, sshProbe: config.health.sshProbe, sshPort: config.sshPort, cacheMs: 1000, probeEveryMs: 5000 },
    });

  // 200 while the daemon answers; `status: degraded` (with the reasons) means no new leases here.
  router.get('/healthz', async (ctx) => {
    const report = await health.report();
    const displaced = pool.displacedLeases();
    ctx.body = { ...report, driver: deps.driver.name, capacity: pool.capacity(), time: new Date(deps.clock.now()).toISOString(), ...(displaced.length > 0 ? { displaced } : {}) } satisfies v1.HypervisorHealth;
  });

  router.post('/v1/leases', scope('lease'), async (ctx) => {
    const body = await readJson(ctx, v1.hypervisorLeaseRequestSchema, limit);
    const lease = await pool.lease(body.user, body.publicKey, {
      session: body.session,
      maxSessions: body.maxSessions,
      home: body.home ? { spill: body.spill } : undefined,
      renewOnly: body.renewOnly,
      displaced: body.displaced,
      refuseNew: body.renewOnly ? undefined : (health.lastDegraded() ?? undefined),
    });
    if ('placedAt' in lease) {
      ctx.body = { user: body.user, placedAt: lease.placedAt } satisfies v1.Placed;
      return;
    }
    ctx.body = {
      container: lease.container,
      address: lease.address,
      sshPort: config.sshPort,
      hostKey: lease.hostKey,
      hostKeyFingerprint: lease.hostKeyFingerprint,
      user: lease.user,
      grantedAt: lease.grantedAt,
      ms: lease.ms,
      hit: lease.hit,
      renewed: lease.renewed,
      sessions: lease.sessions,
      expiresAt: lease.expiresAt,
      secondsLeft: lease.secondsLeft,
    } satisfies Required<v1.Lease>;
  });

  router.delete('/v1/leases/:user', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const session = ctx.query.session === undefined ? undefined : parseInput(sessionIdSchema, ctx.query.session, 'query: session');
    const released = await pool.release(user, session);
    ctx.body = { user, ...released } satisfies v1.Released;
  });

  // As the user's home: where the user's lease is to live (docs/balancer.md, placement).
  router.post('/v1/claims/:user', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const body = await readJson(ctx, v1.claimRequestSchema, limit);
    ctx.body = { user, ...(await pool.claim(user, body.hypervisor, { replace: body.replace, endLease: body.endLease })) } satisfies v1.ClaimAnswer;
  });

  router.post('/v1/leases/:user/settled', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    await readJson(ctx, emptyRequestSchema, limit);
    await pool.settle(user);
    ctx.body = { user } satisfies v1.Settled;
  });

  router.get('/v1/leases', scope('admin'), (ctx) => {
    ctx.body = { leases: pool.leases() } satisfies v1.Leases;
  });

  // What a balancer asks on every lease: cheaper than the whole container list.
  router.get('/v1/users/:user', scope('admin'), (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    ctx.body = { capacity: pool.capacity(), container: pool.containerOf(user), claim: pool.claimOf(user) ?? null } satisfies v1.UserStatus;
  });

  router.get('/v1/containers', scope('admin'), (ctx) => {
    ctx.body = { capacity: pool.capacity(), containers: pool.containers() } satisfies v1.Containers;
  });

  router.post('/v1/containers/:id/reset', scope('admin'), async (ctx) => {
    const id = param(ctx, 'id', containerIdSchema);
    const body = await readJson(ctx, v1.resetRequestSchema, limit);
    ctx.body = (await pool.resetContainer(id, body)) satisfies v1.ResetReport;
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/leases/:user/reset', scope('admin'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const body = await readJson(ctx, v1.resetRequestSchema, limit);
    ctx.body = (await pool.resetUser(user, body)) satisfies v1.ResetReport;
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/reset', scope('admin'), async (ctx) => {
    const body = await readJson(ctx, v1.resetRequestSchema, limit);
    ctx.body = (await pool.resetAll(body)) satisfies v1.ResetReport;
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/reclaim', scope('admin'), async (ctx) => {
    await readJson(ctx, emptyRequestSchema, limit);
    ctx.body = (await reclaimNow()) satisfies v1.ReclaimReport;
  });

  router.get('/metrics', scope('metrics'), metricsHandler(metrics.daemon));

  return createDaemonApp({ router, logger, metrics: metrics.daemon, daemon: 'hypervisor' });
}
