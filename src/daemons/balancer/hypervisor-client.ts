import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { parseInput } from '../../common/validate.js';
import type { HypervisorTarget } from './config.js';

/**
 * Calls to one hypervisor's API (docs/api/hypervisor.openapi.yaml) with a bounded time each.
 * Every failure becomes a HypervisorCallError naming the hypervisor and saying what went wrong
 * (unreachable, timed out, an error answer with its code, or an answer of the wrong shape);
 * the caller decides whether to try another hypervisor.
 */
export type CallFailure = 'unreachable' | 'timeout' | 'http' | 'bad-response';

export class HypervisorCallError extends VzsbError {
  readonly hypervisor: string;
  readonly failure: CallFailure;
  /** HTTP status of an error answer. */
  readonly status: number | undefined;

  constructor(hypervisor: string, failure: CallFailure, code: string, message: string, status?: number, cause?: unknown) {
    super(code, `${hypervisor}: ${message}`, { cause });
    this.name = 'HypervisorCallError';
    this.hypervisor = hypervisor;
    this.failure = failure;
    this.status = status;
  }

  /** Worth trying another hypervisor: it did not answer, failed inside, or is full. */
  get retryable(): boolean {
    return this.failure !== 'http' || (this.status ?? 500) >= 500 || this.status === 401 || this.status === 403;
  }
}

export const capacitySchema = z.looseObject({
  clean: z.number().int().min(0),
  leased: z.number().int().min(0),
  building: z.number().int().min(0),
  dirty: z.number().int().min(0),
  broken: z.number().int().min(0),
  max: z.number().int().min(0),
  standby: z.number().int().min(0),
});
export type Capacity = z.infer<typeof capacitySchema>;
export const capacityStates = ['clean', 'leased', 'building', 'dirty', 'broken'] as const;

const healthSchema = z.looseObject({ status: z.string(), degraded: z.array(z.string()).optional(), driver: z.string().optional(), capacity: capacitySchema });
export type HypervisorHealth = z.infer<typeof healthSchema>;

export const leaseResponseSchema = z.looseObject({
  container: z.string(),
  address: z.string(),
  sshPort: z.number().int(),
  hostKey: z.string(),
  hostKeyFingerprint: z.string(),
  user: z.string(),
  grantedAt: z.string(),
  ms: z.number(),
  hit: z.boolean(),
  renewed: z.boolean(),
});
export type LeaseResponse = z.infer<typeof leaseResponseSchema>;

const releaseResponseSchema = z.looseObject({ user: z.string(), container: z.string(), graceUntil: z.string().nullable() });
export type ReleaseResponse = z.infer<typeof releaseResponseSchema>;

const containerSchema = z.looseObject({
  id: z.string(),
  state: z.string(),
  user: z.string().nullable(),
  since: z.string(),
  address: z.string().nullable(),
});
const containersResponseSchema = z.looseObject({ capacity: capacitySchema, containers: z.array(containerSchema) });
export type ContainersResponse = z.infer<typeof containersResponseSchema>;

const userStatusSchema = z.looseObject({ capacity: capacitySchema, container: containerSchema.nullable() });
export type UserStatus = z.infer<typeof userStatusSchema>;

const leaseViewSchema = z.looseObject({
  user: z.string(),
  container: z.string(),
  address: z.string().nullable(),
  grantedAt: z.string(),
  lastActiveAt: z.string().nullable(),
  loggedIn: z.boolean(),
  releasedAt: z.string().nullable(),
});
export type LeaseView = z.infer<typeof leaseViewSchema>;
const leasesResponseSchema = z.looseObject({ leases: z.array(leaseViewSchema) });

export const resetReportSchema = z.looseObject({
  reset: z.array(z.string()),
  skipped: z.array(z.looseObject({ container: z.string(), user: z.string().nullable(), reason: z.string() })),
  failed: z.array(z.string()),
});
export type ResetReport = z.infer<typeof resetReportSchema>;

export interface ResetOptions {
  force: boolean;
  wait: boolean;
}

/** `fetch` with the hypervisor's token; tests may pass another implementation. */
export type Fetch = typeof fetch;

export class HypervisorClient {
  readonly name: string;
  readonly url: string;
  private readonly token: string;
  private readonly fetchImpl: Fetch;

  constructor(target: HypervisorTarget, fetchImpl: Fetch = fetch) {
    this.name = target.name;
    this.url = target.url;
    this.token = target.token;
    this.fetchImpl = fetchImpl;
  }

  /** Unauthenticated health probe. */
  health(timeoutMs: number): Promise<HypervisorHealth> {
    return this.call('GET', '/healthz', undefined, timeoutMs, healthSchema, false);
  }

  lease(user: string, publicKey: string, timeoutMs: number): Promise<LeaseResponse> {
    return this.call('POST', '/v1/leases', { user, publicKey }, timeoutMs, leaseResponseSchema);
  }

  release(user: string, timeoutMs: number): Promise<ReleaseResponse> {
    return this.call('DELETE', `/v1/leases/${encodeURIComponent(user)}`, undefined, timeoutMs, releaseResponseSchema);
  }

  /** The hypervisor's capacity and the container it holds for `user` (leased or being built), if any. */
  userStatus(user: string, timeoutMs: number): Promise<UserStatus> {
    return this.call('GET', `/v1/users/${encodeURIComponent(user)}`, undefined, timeoutMs, userStatusSchema);
  }

  containers(timeoutMs: number): Promise<ContainersResponse> {
    return this.call('GET', '/v1/containers', undefined, timeoutMs, containersResponseSchema);
  }

  async leases(timeoutMs: number): Promise<LeaseView[]> {
    return (await this.call('GET', '/v1/leases', undefined, timeoutMs, leasesResponseSchema)).leases;
  }

  resetAll(options: ResetOptions, timeoutMs: number): Promise<ResetReport> {
    return this.call('POST', '/v1/reset', options, timeoutMs, resetReportSchema);
  }

  resetUser(user: string, options: ResetOptions, timeoutMs: number): Promise<ResetReport> {
    return this.call('POST', `/v1/leases/${encodeURIComponent(user)}/reset`, options, timeoutMs, resetReportSchema);
  }

  private async call<S extends z.ZodType>(method: string, path: string, body: unknown, timeoutMs: number, schema: S, auth = true): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const signal = AbortSignal.timeout(Math.max(1, Math.round(timeoutMs)));
    let status = 0;
    let text = '';
    for (let attempt = 1; ; attempt++) {
      try {
        const res = await this.fetchImpl(this.url + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal });
        status = res.status;
        text = await res.text();
        break;
      } catch (err) {
        if (signal.aborted) throw new HypervisorCallError(this.name, 'timeout', 'E_HYPERVISOR_TIMEOUT', `no answer to ${method} ${path} within ${timeoutMs} ms`, undefined, err);
        // A kept-alive connection the hypervisor closed just as it was reused: once more on a
        // fresh one. Safe for every call made here: a lease for the same user is the same lease.
        if (attempt === 1 && isStaleConnection(err)) continue;
        throw new HypervisorCallError(this.name, 'unreachable', 'E_HYPERVISOR_UNREACHABLE', `cannot reach ${this.url}: ${networkReason(err)}`, undefined, err);
      }
    }
    let data: unknown;
    try {
      data = JSON.parse(text);
    } catch {
      throw new HypervisorCallError(this.name, 'bad-response', 'E_HYPERVISOR_BAD_RESPONSE', `${method} ${path} answered ${status} with a body that is not JSON`, status);
    }
    if (status < 200 || status > 299) {
      const error = (data as { error?: { code?: unknown; message?: unknown } } | null)?.error;
      const code = typeof error?.code === 'string' ? error.code : `E_HTTP_${status}`;
      const message = typeof error?.message === 'string' ? error.message : `HTTP ${status}`;
      throw new HypervisorCallError(this.name, 'http', code, message, status);
    }
    try {
      return parseInput(schema, data, `${this.name} ${method} ${path}`);
    } catch (err) {
      throw new HypervisorCallError(this.name, 'bad-response', 'E_HYPERVISOR_BAD_RESPONSE', `unexpected answer: ${(err as Error).message}`, status, err);
    }
  }
}

/** The error and its causes, outermost first (undici wraps the socket error in "fetch failed"). */
function* causes(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== null && typeof cur === 'object'; depth++) {
    yield cur as { code?: unknown; message?: unknown };
    cur = (cur as { cause?: unknown }).cause;
  }
}

/** "connect ECONNREFUSED 127.0.0.1:8750" rather than undici's "fetch failed". */
export function networkReason(err: unknown): string {
  for (const e of causes(err)) {
    if (typeof e.code === 'string' && typeof e.message === 'string') return e.message;
  }
  return err instanceof Error ? err.message : String(err);
}

function isStaleConnection(err: unknown): boolean {
  for (const e of causes(err)) {
    if (e.code === 'ECONNRESET' || e.code === 'EPIPE' || e.code === 'UND_ERR_SOCKET') return true;
  }
  return false;
}
