import type { z } from 'zod';
import { fanoutReportSchema, poolsReportSchema, sessionsReportSchema, type FanoutReport, type PoolsReport, type SessionsReport } from '../api/v1/balancer.js';
import { errorBodySchema } from '../api/v1/fields.js';
import type { ResetRequest } from '../api/v1/hypervisor.js';
import { isErrorCode } from '../common/error-catalog.js';
import { VzsbError } from '../common/errors.js';
import { dottedPath } from '../common/validate.js';
import { networkReason } from '../daemons/balancer/hypervisor-client.js';
import type { AdminTarget } from './config.js';

/**
 * The instructor commands' HTTP client for the balancer API. Balancers are tried in order: the
 * next one only when one cannot be reached, times out or is shutting down. Any answer the
 * balancer gave (including a 502 carrying a partial reset report) goes back to the caller, and
 * is read with the contract's schema of the route (src/api/v1/balancer.ts).
 */
export interface AdminResponse<T> {
  status: number;
  body: T;
  /** The balancer that answered. */
  balancer: string;
}

export class AdminClient {
  constructor(
    private readonly target: Pick<AdminTarget, 'balancers' | 'token' | 'timeoutMs'>,
    private readonly fetchImpl: typeof fetch = fetch,
  ) {}

  /** GET /v1/pools: every hypervisor's pool. */
  pools(): Promise<AdminResponse<PoolsReport>> {
    return this.expectOk('GET', '/v1/pools', poolsReportSchema);
  }

  /** GET /v1/sessions: every lease on every hypervisor. */
  sessions(): Promise<AdminResponse<SessionsReport>> {
    return this.expectOk('GET', '/v1/sessions', sessionsReportSchema);
  }

  /**
   * One of the reset routes (`path`): its results, also with a 502 (or 404, 409); an error before
   * any hypervisor was asked (unknown hypervisor name, bad user name) is thrown.
   */
  async reset(path: string, options: ResetRequest): Promise<AdminResponse<FanoutReport>> {
    return read(await this.request('POST', path, options), fanoutReportSchema);
  }

  /** The balancer's answer, whatever its status, not read yet. */
  async request(method: string, path: string, body?: unknown): Promise<AdminResponse<unknown>> {
    const problems: string[] = [];
    for (const balancer of this.target.balancers) {
      const signal = AbortSignal.timeout(this.target.timeoutMs);
      let status: number;
      let text: string;
      try {
        const res = await this.fetchImpl(balancer + path, {
          method,
          headers: { authorization: `Bearer ${this.target.token}`, accept: 'application/json', ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
          body: body === undefined ? undefined : JSON.stringify(body),
          signal,
        });
        status = res.status;
        text = await res.text();
      } catch (err) {
        problems.push(`${balancer}: ${signal.aborted ? `no answer within ${this.target.timeoutMs} ms` : networkReason(err)}`);
        continue;
      }
      let parsed: unknown;
      try {
        parsed = JSON.parse(text);
      } catch {
        problems.push(`${balancer}: answered ${status} with a body that is not JSON`);
        continue;
      }
      const error = errorOf(parsed);
      if (status === 503 && error?.code === 'E_SHUTTING_DOWN') {
        problems.push(`${balancer}: shutting down`);
        continue;
      }
      if (status === 401 || status === 403) {
        throw new VzsbError(status === 401 ? 'E_UNAUTHORIZED' : 'E_FORBIDDEN', `${balancer}: ${error?.message ?? `HTTP ${status}`} (the admin token must be one of the balancer's tokens.admin)`);
      }
      return { status, body: parsed, balancer };
    }
    throw new VzsbError('E_BALANCER_UNREACHABLE', `no balancer answered: ${problems.join('; ')}`);
  }

  /** A request whose non-2xx answer is an error (its code and message from the balancer); the answer read with `schema`. */
  async expectOk<S extends z.ZodType>(method: string, path: string, schema: S, body?: unknown): Promise<AdminResponse<z.output<S>>> {
    const res = await this.request(method, path, body);
    if (res.status < 200 || res.status > 299) throw answerError(res);
    return read(res, schema);
  }
}

/**
 * `res` read with `schema`, whatever its status (a reset's 502 carries the results too); an
 * answer of another shape is the error it carries, or E_API.
 */
function read<S extends z.ZodType>(res: AdminResponse<unknown>, schema: S): AdminResponse<z.output<S>> {
  const parsed = schema.safeParse(res.body);
  if (parsed.success) return { ...res, body: parsed.data };
  if (res.status < 200 || res.status > 299) throw answerError(res);
  throw new VzsbError('E_API', `${res.balancer}: unexpected answer (HTTP ${res.status}): ${parsed.error.issues.map((i) => `${dottedPath(i.path) || '(root)'}: ${i.message}`).join('; ')}`);
}

function answerError(res: AdminResponse<unknown>): VzsbError {
  const error = errorOf(res.body);
  const code = error?.code;
  // A code this version does not know (another version's) is E_API, with that code in the message.
  if (isErrorCode(code)) return new VzsbError(code, `${res.balancer}: ${error?.message ?? `HTTP ${res.status}`}`);
  return new VzsbError('E_API', `${res.balancer}: ${error?.message ?? `HTTP ${res.status}`}${code ? ` (${code})` : ''}`);
}

function errorOf(body: unknown): { code?: string; message?: string } | undefined {
  const parsed = errorBodySchema.safeParse(body);
  return parsed.success ? parsed.data.error : undefined;
}
