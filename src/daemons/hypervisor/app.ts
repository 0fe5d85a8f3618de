import Router from '@koa/router';
import type Koa from 'koa';
import { z } from 'zod';
import type { Logger } from '../../common/log.js';
import { requireScope, TokenAuth, type Scope } from '../common/auth.js';
import type { Clock } from '../common/clock.js';
import { parseInput } from '../../common/validate.js';
import { createDaemonApp, param, readJson } from '../common/http.js';
import { countAuthFailure, metricsHandler } from '../common/metrics.js';
import { parsePublicKey } from '../common/ssh-key.js';
import type { ContainerDriver } from '../drivers/types.js';
import type { HypervisorConfig } from './config.js';
import { HypervisorHealth } from './health.js';
import { HypervisorMetrics } from './metrics.js';
import type { Pool, ReclaimReport } from './pool.js';

/**
 * The hypervisor's HTTP API v1 (docs/api/hypervisor.openapi.yaml). A factory: it opens no
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
  reclaimNow?: () => Promise<ReclaimReport>;
}

/** Unix user names as useradd accepts them by default (NAME_REGEX), at most 32 characters. */
export const userNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a Unix user name (a-z or _ first, then up to 31 of a-z 0-9 _ -)');

export const publicKeySchema = z.string().superRefine((value, ctx) => {
  const parsed = parsePublicKey(value);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `expected ${parsed.error}` });
});

const containerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{0,20}\d{1,9}$/, 'expected a container id like "vzsb-0007"');

/** A login session's id, chosen by the gateway (host, process, random part). */
export const sessionIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'expected a session id (letters, digits, . _ : @ -, at most 128)');
const hypervisorNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a hypervisor name');

/** A lease as a gateway asks for it (the balancer's POST /v1/leases). */
export const leaseRequestSchema = z.strictObject({
  user: userNameSchema,
  publicKey: publicKeySchema,
  session: sessionIdSchema.optional(),
  maxSessions: z.number().int().min(1).max(1000).optional(),
});
/** What a balancer sends a hypervisor: the gateway's request plus where it stands in placement. */
export const hypervisorLeaseSchema = leaseRequestSchema.extend({
  home: z.boolean().default(false),
  spill: hypervisorNameSchema.optional(),
  renewOnly: z.boolean().default(false),
  displaced: hypervisorNameSchema.optional(),
});
const claimRequestSchema = z.strictObject({
  hypervisor: hypervisorNameSchema.nullable(),
  replace: hypervisorNameSchema.optional(),
  endLease: z.boolean().default(false),
});
export const resetRequestSchema = z.strictObject({
  /** Reset containers with live ssh sessions too (their leases end). */
  force: z.boolean().default(false),
  /** Answer once the resets finished (200) instead of when they started (202). */
  wait: z.boolean().default(false),
});

const STATUS_BY_CODE: Record<string, number> = {
  E_POOL_FULL: 503,
  E_LEASE_FAILED: 503,
  E_NO_LEASE: 404,
  E_IN_USE: 409,
  // Not worth another hypervisor: the user's container is here and kept.
  E_RENEW_FAILED: 409,
  E_STATE_UNWRITABLE: 503,
  // Its last health check failed (a bridge down, a full disk): a new lease is worth another.
  E_DEGRADED: 503,
  E_TOO_MANY: 409,
  E_HELD_HERE: 409,
};

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
    ctx.body = { ...report, driver: deps.driver.name, capacity: pool.capacity(), time: new Date(deps.clock.now()).toISOString(), ...(displaced.length > 0 ? { displaced } : {}) };
  });

  router.post('/v1/leases', scope('lease'), async (ctx) => {
    const body = await readJson(ctx, hypervisorLeaseSchema, limit);
    const lease = await pool.lease(body.user, body.publicKey, {
      session: body.session,
      maxSessions: body.maxSessions,
      home: body.home ? { spill: body.spill } : undefined,
      renewOnly: body.renewOnly,
      displaced: body.displaced,
      refuseNew: body.renewOnly ? undefined : (health.lastDegraded() ?? undefined),
    });
    if ('placedAt' in lease) {
      ctx.body = { user: body.user, placedAt: lease.placedAt };
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
    };
  });

  router.delete('/v1/leases/:user', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const session = ctx.query.session === undefined ? undefined : parseInput(sessionIdSchema, ctx.query.session, 'query: session');
    const released = await pool.release(user, session);
    ctx.body = { user, ...released };
  });

  // As the user's home: where the user's lease is to live (docs/balancer.md, placement).
  router.post('/v1/claims/:user', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const body = await readJson(ctx, claimRequestSchema, limit);
    ctx.body = { user, ...(await pool.claim(user, body.hypervisor, { replace: body.replace, endLease: body.endLease })) };
  });

  router.post('/v1/leases/:user/settled', scope('lease'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    await readJson(ctx, z.strictObject({}), limit);
    await pool.settle(user);
    ctx.body = { user };
  });

  router.get('/v1/leases', scope('admin'), (ctx) => {
    ctx.body = { leases: pool.leases() };
  });

  // What a balancer asks on every lease: cheaper than the whole container list.
  router.get('/v1/users/:user', scope('admin'), (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    ctx.body = { capacity: pool.capacity(), container: pool.containerOf(user), claim: pool.claimOf(user) ?? null };
  });

  router.get('/v1/containers', scope('admin'), (ctx) => {
    ctx.body = { capacity: pool.capacity(), containers: pool.containers() };
  });

  router.post('/v1/containers/:id/reset', scope('admin'), async (ctx) => {
    const id = param(ctx, 'id', containerIdSchema);
    const body = await readJson(ctx, resetRequestSchema, limit);
    ctx.body = await pool.resetContainer(id, body);
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/leases/:user/reset', scope('admin'), async (ctx) => {
    const user = param(ctx, 'user', userNameSchema);
    const body = await readJson(ctx, resetRequestSchema, limit);
    ctx.body = await pool.resetUser(user, body);
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/reset', scope('admin'), async (ctx) => {
    const body = await readJson(ctx, resetRequestSchema, limit);
    ctx.body = await pool.resetAll(body);
    ctx.status = body.wait ? 200 : 202;
  });

  router.post('/v1/reclaim', scope('admin'), async (ctx) => {
    await readJson(ctx, z.strictObject({}), limit);
    ctx.body = await reclaimNow();
  });

  router.get('/metrics', scope('metrics'), metricsHandler(metrics.daemon));

  return createDaemonApp({ router, logger, metrics: metrics.daemon, statusByCode: STATUS_BY_CODE });
}
