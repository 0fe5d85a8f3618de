import { isErrorCode } from '../common/error-catalog.js';
import { VzsbError } from '../common/errors.js';
import { networkReason } from '../daemons/balancer/hypervisor-client.js';
import type { AdminTarget } from './config.js';

/**
 * The instructor commands' HTTP client for the balancer API. Balancers are tried in order: the
 * next one only when one cannot be reached, times out or is shutting down. Any answer the
 * balancer gave (including a 502 carrying a partial reset report) goes back to the caller.
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

  async request<T>(method: string, path: string, body?: unknown): Promise<AdminResponse<T>> {
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
      const error = (parsed as { error?: { code?: string; message?: string } }).error;
      if (status === 503 && error?.code === 'E_SHUTTING_DOWN') {
        problems.push(`${balancer}: shutting down`);
        continue;
      }
      if (status === 401 || status === 403) {
        throw new VzsbError(status === 401 ? 'E_UNAUTHORIZED' : 'E_FORBIDDEN', `${balancer}: ${error?.message ?? `HTTP ${status}`} (the admin token must be one of the balancer's tokens.admin)`);
      }
      return { status, body: parsed as T, balancer };
    }
    throw new VzsbError('E_BALANCER_UNREACHABLE', `no balancer answered: ${problems.join('; ')}`);
  }

  /** A request whose non-2xx answer is an error (its code and message from the balancer). */
  async expectOk<T>(method: string, path: string, body?: unknown): Promise<AdminResponse<T>> {
    const res = await this.request<T>(method, path, body);
    if (res.status >= 200 && res.status < 300) return res;
    const error = (res.body as { error?: { code?: string; message?: string } }).error;
    const code = error?.code;
    // A code this version does not know (another version's) is E_API, with that code in the message.
    if (isErrorCode(code)) throw new VzsbError(code, `${res.balancer}: ${error?.message ?? `HTTP ${res.status}`}`);
    throw new VzsbError('E_API', `${res.balancer}: ${error?.message ?? `HTTP ${res.status}`}${code ? ` (${code})` : ''}`);
  }
}
