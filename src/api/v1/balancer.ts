import { z } from 'zod';
import { countSchema, sessionIdSchema, timeSchema, type Known, type Route } from './fields.js';
import { capacitySchema, containerSchema, leaseRequestSchema, leaseSchema, leaseViewSchema, releasedSchema, resetReportSchema, resetRequestSchema } from './hypervisor.js';

/**
 * The balancer's HTTP API v1 (docs/api/balancer.openapi.yaml). Its requests are the
 * hypervisor's (leaseRequestSchema, resetRequestSchema in ./hypervisor.ts); its lease answers
 * are the hypervisor's plus the hypervisor that holds the lease. The daemon
 * (src/daemons/balancer/) builds its answers to these types; `vzsb pools` and `vzsb sessions`
 * (src/admin/client.ts) parse them with these schemas; the gateway's own parser
 * (src/shell/balancer-client.ts) is held to `gatewayLeaseSchema` by test/api/contract.test.ts.
 */

/** GET /healthz (no authentication; no hypervisor names). */
export const balancerHealthSchema = z.looseObject({
  status: z.enum(['ok', 'degraded']),
  hypervisors: z.looseObject({ up: countSchema, total: countSchema }),
  time: timeSchema,
});
export type BalancerHealth = Known<z.output<typeof balancerHealthSchema>>;

/** POST /v1/leases: the hypervisor's lease, and which hypervisor holds it. */
export const balancedLeaseSchema = leaseSchema.extend({
  hypervisor: z.string(),
  /** The user's lease was on this hypervisor, which did not come back in time: this is a new container. */
  movedFrom: z.string().optional(),
});
export type BalancedLease = Known<z.output<typeof balancedLeaseSchema>>;

/**
 * What a gateway needs of a lease answer, checked before it connects anywhere: the fields of
 * `balancedLeaseSchema` it reads, and of those only the ones every v1 lease server sends are
 * required (a gateway may be pointed at one hypervisor directly: no `hypervisor`). The gateway
 * parses it by hand (zod costs its login path more start-up time than the rest).
 */
export const gatewayLeaseSchema = balancedLeaseSchema
  .pick({ container: true, address: true, sshPort: true, hostKey: true, hostKeyFingerprint: true, user: true, hypervisor: true, ms: true, movedFrom: true, secondsLeft: true })
  .extend({
    hostKey: leaseSchema.shape.hostKey.nullable().optional(),
    // Informational: a value of another type is ignored, not refused.
    hypervisor: z.string().optional().catch(undefined),
    ms: z.number().optional().catch(undefined),
    movedFrom: z.string().optional().catch(undefined),
  });
export type GatewayLease = Known<z.output<typeof gatewayLeaseSchema>>;

/** DELETE /v1/leases/{user}. */
export const balancedReleaseSchema = releasedSchema.extend({ hypervisor: z.string() });
export type BalancedRelease = Known<z.output<typeof balancedReleaseSchema>>;

/** A hypervisor call that failed, as the fan-out reports it. */
export const callErrorSchema = z.looseObject({
  code: z.string(),
  /** Starts with the hypervisor's name. */
  message: z.string(),
});
export type CallError = Known<z.output<typeof callErrorSchema>>;

export const poolViewSchema = z.looseObject({
  name: z.string(),
  url: z.string(),
  /** It answered this request. */
  up: z.boolean(),
  /** Last answer (this request or a health poll). */
  lastSeen: timeSchema.nullable(),
  error: callErrorSchema.nullable(),
  capacity: capacitySchema.nullable(),
  containers: z.array(containerSchema),
});
export type PoolView = Known<z.output<typeof poolViewSchema>>;

/** GET /v1/pools. */
export const poolsReportSchema = z.looseObject({
  time: timeSchema,
  hypervisors: z.array(poolViewSchema),
  /** Over the hypervisors that answered. */
  totals: capacitySchema,
  up: countSchema,
  down: countSchema,
});
export type PoolsReport = Known<z.output<typeof poolsReportSchema>>;

export const sessionViewSchema = leaseViewSchema.extend({ hypervisor: z.string() });
export type SessionView = Known<z.output<typeof sessionViewSchema>>;

/** GET /v1/sessions. */
export const sessionsReportSchema = z.looseObject({
  /** The balancer's clock; idle = time - lastActiveAt. */
  time: timeSchema,
  sessions: z.array(sessionViewSchema),
  /** Hypervisors that could not be asked: their sessions are missing from the list. */
  unavailable: z.array(z.looseObject({ hypervisor: z.string(), error: callErrorSchema })),
});
export type SessionsReport = Known<z.output<typeof sessionsReportSchema>>;

export const resultStatuses = ['done', 'no-lease', 'failed'] as const;
export type ResultStatus = (typeof resultStatuses)[number];

export const hypervisorResultSchema = z.looseObject({
  hypervisor: z.string(),
  status: z.enum(resultStatuses),
  report: resetReportSchema.optional(),
  error: callErrorSchema.optional(),
});
export type HypervisorResult = Known<z.output<typeof hypervisorResultSchema>>;

/** Every reset route: one result per hypervisor asked, in configuration order (200, or 404/409/502 with the results). */
export const fanoutReportSchema = z.looseObject({
  ok: z.boolean(),
  results: z.array(hypervisorResultSchema),
  error: callErrorSchema.optional(),
});
export type FanoutReport = Known<z.output<typeof fanoutReportSchema>>;

/** Every route of the balancer's API, by "METHOD /path" as the OpenAPI file writes it. */
export const balancerRoutes: Record<string, Route> = {
  'GET /healthz': { answers: { 200: balancerHealthSchema } },
  'POST /v1/leases': { scope: 'lease', body: leaseRequestSchema, answers: { 200: balancedLeaseSchema } },
  'DELETE /v1/leases/{user}': { scope: 'lease', query: { session: sessionIdSchema }, answers: { 200: balancedReleaseSchema } },
  'GET /v1/pools': { scope: 'admin', answers: { 200: poolsReportSchema } },
  'GET /v1/sessions': { scope: 'admin', answers: { 200: sessionsReportSchema } },
  'POST /v1/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: fanoutReportSchema, 502: fanoutReportSchema } },
  'POST /v1/hypervisors/{name}/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: fanoutReportSchema, 502: fanoutReportSchema } },
  // No lease anywhere (404), in use (409), or not done and some not asked (502): the results too.
  'POST /v1/users/{user}/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: fanoutReportSchema, 404: fanoutReportSchema, 409: fanoutReportSchema, 502: fanoutReportSchema } },
  'GET /metrics': { scope: 'metrics', answers: { 200: 'text' } },
};
