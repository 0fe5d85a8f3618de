import { z } from 'zod';
import {
  addressSchema,
  containerNameSchema,
  countSchema,
  emptyRequestSchema,
  fingerprintSchema,
  hostKeyLineSchema,
  hypervisorNameSchema,
  portSchema,
  publicKeySchema,
  secondsLeftSchema,
  sessionIdSchema,
  timeSchema,
  userNameSchema,
  type Known,
  type Route,
} from './fields.js';

/**
 * The hypervisor's HTTP API v1 (docs/api/hypervisor.openapi.yaml): what each route takes and
 * answers. The daemon (src/daemons/hypervisor/app.ts) builds its answers to these types, the
 * balancer (src/daemons/balancer/hypervisor-client.ts) parses them with these schemas, and
 * test/api/contract.test.ts holds the OpenAPI file to them.
 */

// ---- requests ----

/** A lease as a gateway asks for it (the balancer's POST /v1/leases, and the hypervisor's). */
export const leaseRequestSchema = z.strictObject({
  user: userNameSchema,
  publicKey: publicKeySchema,
  session: sessionIdSchema.optional(),
  maxSessions: z.number().int().min(1).max(1000).optional(),
});
export type LeaseRequest = z.input<typeof leaseRequestSchema>;

/** What a balancer sends a hypervisor: the gateway's request plus where it stands in placement. */
export const hypervisorLeaseRequestSchema = leaseRequestSchema.extend({
  /** This hypervisor is the user's home: it settles where the user's lease lives. */
  home: z.boolean().default(false),
  /** With home: where to send the user when no container is free here. */
  spill: hypervisorNameSchema.optional(),
  /** Only renew a lease this hypervisor holds; never grant a new one (E_NO_LEASE). */
  renewOnly: z.boolean().default(false),
  /** The lease is given while the user's home (this name) was down. */
  displaced: hypervisorNameSchema.optional(),
});
export type HypervisorLeaseRequest = z.input<typeof hypervisorLeaseRequestSchema>;

/** POST /v1/claims/{user}. */
export const claimRequestSchema = z.strictObject({
  hypervisor: hypervisorNameSchema.nullable(),
  replace: hypervisorNameSchema.optional(),
  endLease: z.boolean().default(false),
});
export type ClaimRequest = z.input<typeof claimRequestSchema>;

/** The body of every reset route (the hypervisor's and the balancer's). */
export const resetRequestSchema = z.strictObject({
  /** Reset containers with live ssh sessions too (their leases end). */
  force: z.boolean().default(false),
  /** Answer once the resets finished (200) instead of when they started (202). */
  wait: z.boolean().default(false),
});
export type ResetRequest = z.output<typeof resetRequestSchema>;

// ---- answers ----

export const containerStates = ['building', 'clean', 'leased', 'dirty', 'broken'] as const;
/** The states a pool's capacity counts (`max` and `standby` are its limits). */
export const capacityStates = ['clean', 'leased', 'building', 'dirty', 'broken'] as const;

export const capacitySchema = z.looseObject({
  clean: countSchema,
  leased: countSchema,
  building: countSchema,
  dirty: countSchema,
  broken: countSchema,
  max: countSchema,
  /** The current standby target (the schedule may change it). */
  standby: countSchema,
});
export type Capacity = Known<z.output<typeof capacitySchema>>;

export const containerSchema = z.looseObject({
  id: z.string(),
  state: z.enum(containerStates),
  /** The lease holder, or the user a miss is building it for. */
  user: z.string().nullable(),
  /** When it entered this state. */
  since: timeSchema,
  address: z.string().nullable(),
});
export type ContainerView = Known<z.output<typeof containerSchema>>;

/** POST /v1/leases: the lease. */
export const leaseSchema = z.looseObject({
  container: containerNameSchema,
  address: addressSchema,
  sshPort: portSchema,
  /** The container's ssh host key (OpenSSH line); verify it when connecting. */
  hostKey: hostKeyLineSchema,
  hostKeyFingerprint: fingerprintSchema,
  user: userNameSchema,
  /** When the lease began (unchanged when renewed). */
  grantedAt: timeSchema,
  /** Time the daemon took for this request. */
  ms: z.number(),
  /** true when a ready container was used, false when one was built for this request. */
  hit: z.boolean(),
  /** true when the user already held this container. */
  renewed: z.boolean(),
  // Added within v1: hypervisors before them do not send these.
  /** Live sessions of the lease, this one included. */
  sessions: countSchema.optional(),
  /** When the maximum session length ends the lease (null: no maximum), and how far off that is. */
  expiresAt: timeSchema.nullable().optional(),
  secondsLeft: secondsLeftSchema.optional(),
});
export type Lease = Known<z.output<typeof leaseSchema>>;

/** POST /v1/leases with home: the user's lease lives (or is to live) on another hypervisor. */
export const placedSchema = z.looseObject({
  user: userNameSchema,
  /** The hypervisor to ask for this user's lease. */
  placedAt: z.string(),
});
export type Placed = Known<z.output<typeof placedSchema>>;

export const leaseAnswerSchema = z.union([leaseSchema, placedSchema]);
export type LeaseAnswer = Lease | Placed;

/** A lease answer that names where the lease lives instead of being one. */
export function isPlaced<L extends object, P extends Pick<Placed, 'placedAt'>>(answer: L | P): answer is P {
  return typeof (answer as { placedAt?: unknown }).placedAt === 'string';
}

/** DELETE /v1/leases/{user}. */
export const releasedSchema = z.looseObject({
  user: z.string(),
  container: z.string(),
  /** null: the reset started at once, or the lease goes on. */
  graceUntil: timeSchema.nullable(),
  /** Sessions the lease still has. */
  sessions: countSchema,
  /** false when other sessions keep the lease. */
  released: z.boolean(),
});
export type Released = Known<z.output<typeof releasedSchema>>;

/** POST /v1/claims/{user}: where the user's lease lives now (null: on this hypervisor). */
export const claimAnswerSchema = z.looseObject({ user: z.string(), hypervisor: z.string().nullable() });
export type ClaimAnswer = Known<z.output<typeof claimAnswerSchema>>;

/** POST /v1/leases/{user}/settled. */
export const settledSchema = z.looseObject({ user: z.string() });
export type Settled = Known<z.output<typeof settledSchema>>;

/** GET /v1/users/{user}. */
export const userStatusSchema = z.looseObject({
  capacity: capacitySchema,
  container: containerSchema.nullable(),
  /** As the user's home: the hypervisor their lease was placed on. */
  claim: z.string().nullable(),
});
export type UserStatus = Known<z.output<typeof userStatusSchema>>;

/** GET /v1/containers. */
export const containersSchema = z.looseObject({ capacity: capacitySchema, containers: z.array(containerSchema) });
export type Containers = Known<z.output<typeof containersSchema>>;

export const leaseViewSchema = z.looseObject({
  user: z.string(),
  container: z.string(),
  address: z.string().nullable(),
  grantedAt: timeSchema,
  /** Last time the reclaim job saw an ssh session (or the grant). */
  lastActiveAt: timeSchema.nullable(),
  /** An ssh session was seen during this lease. */
  loggedIn: z.boolean(),
  /** Released and in its grace period since. */
  releasedAt: timeSchema.nullable(),
});
export type LeaseView = Known<z.output<typeof leaseViewSchema>>;

/** GET /v1/leases. */
export const leasesSchema = z.looseObject({ leases: z.array(leaseViewSchema) });
export type Leases = Known<z.output<typeof leasesSchema>>;

/** Every reset route (200 with wait, 202 without). */
export const resetReportSchema = z.looseObject({
  reset: z.array(z.string()),
  skipped: z.array(z.looseObject({ container: z.string(), user: z.string().nullable(), reason: z.string() })),
  /** With wait: resets that failed (the container is broken). */
  failed: z.array(z.string()),
});
export type ResetReport = Known<z.output<typeof resetReportSchema>>;

export const reclaimReasons = ['released', 'idle', 'never-used', 'session-limit', 'reset', 'lost', 'moved'] as const;
export type ReclaimReason = (typeof reclaimReasons)[number];

/** POST /v1/reclaim. */
export const reclaimReportSchema = z.looseObject({
  reclaimed: z.array(z.looseObject({ user: z.string(), container: z.string(), reason: z.enum(reclaimReasons) })),
  /** Leases checked and kept. */
  kept: countSchema,
  /** Broken containers removed so their number can be rebuilt. */
  repaired: z.array(z.string()),
});
export type ReclaimReport = Known<z.output<typeof reclaimReportSchema>>;

/** A lease given here while the user's previous holder (`from`) did not answer, not settled yet. */
export const displacedSchema = z.looseObject({ user: z.string(), from: z.string() });

/** GET /healthz (no authentication). */
export const hypervisorHealthSchema = z.looseObject({
  status: z.enum(['ok', 'degraded']),
  /** One reason per failed check. */
  degraded: z.array(z.string()),
  checks: z.looseObject({
    state: z.looseObject({ writable: z.boolean(), error: z.string().optional(), since: timeSchema.optional(), pending: z.boolean() }),
    network: z
      .looseObject({
        ok: z.boolean(),
        problems: z.array(z.string()),
        sshProbe: z.looseObject({ container: z.string(), ok: z.boolean(), ms: z.number().optional(), error: z.string().optional() }).optional(),
      })
      .optional(),
    disk: z.looseObject({ freeBytes: z.number(), minFreeBytes: z.number(), ok: z.boolean() }).optional(),
  }),
  driver: z.string(),
  capacity: capacitySchema,
  time: timeSchema,
  /** Only when not empty. */
  displaced: z.array(displacedSchema).optional(),
});
export type HypervisorHealth = Known<z.output<typeof hypervisorHealthSchema>>;

/** Every route of the hypervisor's API, by "METHOD /path" as the OpenAPI file writes it. */
export const hypervisorRoutes: Record<string, Route> = {
  'GET /healthz': { answers: { 200: hypervisorHealthSchema } },
  'POST /v1/leases': { scope: 'lease', body: hypervisorLeaseRequestSchema, answers: { 200: leaseAnswerSchema } },
  'GET /v1/leases': { scope: 'admin', answers: { 200: leasesSchema } },
  'DELETE /v1/leases/{user}': { scope: 'lease', query: { session: sessionIdSchema }, answers: { 200: releasedSchema } },
  'POST /v1/leases/{user}/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: resetReportSchema, 202: resetReportSchema } },
  'POST /v1/leases/{user}/settled': { scope: 'lease', body: emptyRequestSchema, answers: { 200: settledSchema } },
  'POST /v1/claims/{user}': { scope: 'lease', body: claimRequestSchema, answers: { 200: claimAnswerSchema } },
  'GET /v1/users/{user}': { scope: 'admin', answers: { 200: userStatusSchema } },
  'GET /v1/containers': { scope: 'admin', answers: { 200: containersSchema } },
  'POST /v1/containers/{id}/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: resetReportSchema, 202: resetReportSchema } },
  'POST /v1/reset': { scope: 'admin', body: resetRequestSchema, answers: { 200: resetReportSchema, 202: resetReportSchema } },
  'POST /v1/reclaim': { scope: 'admin', body: emptyRequestSchema, answers: { 200: reclaimReportSchema } },
  'GET /metrics': { scope: 'metrics', answers: { 200: 'text' } },
};
