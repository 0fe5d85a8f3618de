import { Agent, request as httpRequest } from 'node:http';
import { z } from 'zod';
import { httpAnswer, isErrorCode } from '../../common/error-catalog.js';
import { VzsbError, type ErrorCode } from '../../common/errors.js';
import { parseInput } from '../../common/validate.js';
import * as v1 from '../../api/v1/hypervisor.js';
import type { HypervisorTarget } from './config.js';

/**
 * Calls to one hypervisor's API (docs/api/hypervisor.openapi.yaml) with a bounded time each;
 * every answer is parsed with the contract's schema (src/api/v1/hypervisor.ts).
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

  constructor(hypervisor: string, failure: CallFailure, code: ErrorCode, message: string, status?: number, cause?: unknown) {
    super(code, `${hypervisor}: ${message}`, { cause });
    this.name = 'HypervisorCallError';
    this.hypervisor = hypervisor;
    this.failure = failure;
    this.status = status;
  }

  /**
   * Worth trying another hypervisor: it did not answer, failed inside, or is full (the error
   * catalog says which codes); an answer without a known code, by its status.
   */
  get retryable(): boolean {
    if (this.failure !== 'http') return true;
    const retry = httpAnswer('hypervisor', this.code)?.retry;
    if (retry !== undefined) return retry !== 'no';
    return (this.status ?? 500) >= 500 || this.status === 401 || this.status === 403;
  }
}

/**
 * What the balancer reads of GET /healthz: the status, the capacity and the displaced leases
 * (a hypervisor's health poll answer counts as up without the rest).
 */
const healthReadSchema = v1.hypervisorHealthSchema
  .pick({ status: true, degraded: true, driver: true, capacity: true, displaced: true })
  .partial({ degraded: true, driver: true });
export type HypervisorHealth = z.output<typeof healthReadSchema>;

export type LeaseResponse = z.output<typeof v1.leaseSchema>;
/** What the balancer keeps of a home's answer that the lease lives elsewhere. */
export type Placed = Pick<v1.Placed, 'placedAt'>;
export type LeaseAnswer = LeaseResponse | Placed;
export type ReleaseResponse = z.output<typeof v1.releasedSchema>;
export type UserStatus = z.output<typeof v1.userStatusSchema>;
export type ContainersResponse = z.output<typeof v1.containersSchema>;

/** One HTTP exchange: what `call` needs from the transport (tests may pass another). */
export interface Transport {
  (url: string, init: { method: string; headers: Record<string, string>; body: string | undefined; timeoutMs: number }): Promise<{ status: number; text: string }>;
}

export interface ClientOptions {
  /** Kept-alive connections to this hypervisor at most (more requests queue for one). Default 64. */
  maxSockets?: number;
  transport?: Transport;
}

/**
 * node:http with one keep-alive Agent per hypervisor: a lease costs no TCP handshake and no
 * fetch machinery (undici's fetch was most of the balancer's CPU), and a burst queues on a
 * bounded number of connections instead of opening one each.
 */
export function keepAliveTransport(maxSockets = 64): Transport {
  // Idle sockets are closed here after 4 s, before the hypervisor's own 5 s keep-alive timeout
  // closes them under a request being sent.
  const agent = new Agent({ keepAlive: true, keepAliveMsecs: 1000, maxSockets, maxFreeSockets: Math.min(maxSockets, 16), scheduling: 'lifo', timeout: 4000 });
  return (url, init) =>
    new Promise((resolve, reject) => {
      const req = httpRequest(url, { method: init.method, headers: init.body === undefined ? init.headers : { ...init.headers, 'content-length': String(Buffer.byteLength(init.body)) }, agent });
      // A timer that fires late means this process was busy (its own event-loop lag), not that
      // the hypervisor was slow: its answer may be waiting in the socket. One short extra wait
      // lets it be read before the call counts as timed out.
      const armed = performance.now();
      let extended = false;
      const expire = () => {
        const late = performance.now() - armed - init.timeoutMs;
        if (!extended && late > Math.max(50, init.timeoutMs / 4)) {
          extended = true;
          timer = setTimeout(expire, Math.min(1000, Math.max(100, init.timeoutMs)));
          return;
        }
        req.destroy(new TimeoutError(init.timeoutMs));
      };
      let timer = setTimeout(expire, init.timeoutMs);
      req.on('response', (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          clearTimeout(timer);
          resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      });
      req.on('error', (err) => {
        clearTimeout(timer);
        // A kept-alive socket the hypervisor had closed just as it was reused: nothing was served.
        reject(req.reusedSocket && !(err instanceof TimeoutError) ? new StaleSocketError(err) : err);
      });
      req.end(init.body);
    });
}

class StaleSocketError extends Error {
  constructor(readonly original: Error) {
    super(original.message, { cause: original });
  }
}

class TimeoutError extends Error {
  constructor(readonly ms: number) {
    super(`no answer within ${ms} ms`);
  }
}

export class HypervisorClient {
  readonly name: string;
  readonly url: string;
  private readonly token: string;
  private readonly transport: Transport;

  constructor(target: HypervisorTarget, options: ClientOptions = {}) {
    this.name = target.name;
    this.url = target.url;
    this.token = target.token;
    this.transport = options.transport ?? keepAliveTransport(options.maxSockets);
  }

  /** Unauthenticated health probe. */
  health(timeoutMs: number): Promise<HypervisorHealth> {
    return this.call('GET', '/healthz', undefined, timeoutMs, healthReadSchema, false);
  }

  async lease(request: v1.HypervisorLeaseRequest, timeoutMs: number): Promise<LeaseAnswer> {
    const answer = await this.call('POST', '/v1/leases', request, timeoutMs, v1.leaseAnswerSchema);
    return v1.isPlaced(answer) ? { placedAt: answer.placedAt } : answer;
  }

  /** End one session of `user`'s lease (the lease ends with its last), or the whole lease without `session`. */
  release(user: string, timeoutMs: number, session?: string): Promise<ReleaseResponse> {
    const query = session === undefined ? '' : `?session=${encodeURIComponent(session)}`;
    return this.call('DELETE', `/v1/leases/${encodeURIComponent(user)}${query}`, undefined, timeoutMs, v1.releasedSchema);
  }

  /** Ask `user`'s home to send the user to `hypervisor` (replacing `replace`, a claim that failed). */
  claim(user: string, body: v1.ClaimRequest, timeoutMs: number): Promise<z.output<typeof v1.claimAnswerSchema>> {
    return this.call('POST', `/v1/claims/${encodeURIComponent(user)}`, body, timeoutMs, v1.claimAnswerSchema);
  }

  /** A lease given while its user's home was down is known to that home now. */
  settle(user: string, timeoutMs: number): Promise<z.output<typeof v1.settledSchema>> {
    return this.call('POST', `/v1/leases/${encodeURIComponent(user)}/settled`, {}, timeoutMs, v1.settledSchema);
  }

  /** The hypervisor's capacity and the container it holds for `user` (leased or being built), if any. */
  userStatus(user: string, timeoutMs: number): Promise<UserStatus> {
    return this.call('GET', `/v1/users/${encodeURIComponent(user)}`, undefined, timeoutMs, v1.userStatusSchema);
  }

  containers(timeoutMs: number): Promise<ContainersResponse> {
    return this.call('GET', '/v1/containers', undefined, timeoutMs, v1.containersSchema);
  }

  async leases(timeoutMs: number): Promise<z.output<typeof v1.leaseViewSchema>[]> {
    return (await this.call('GET', '/v1/leases', undefined, timeoutMs, v1.leasesSchema)).leases;
  }

  resetAll(options: v1.ResetRequest, timeoutMs: number): Promise<z.output<typeof v1.resetReportSchema>> {
    return this.call('POST', '/v1/reset', options, timeoutMs, v1.resetReportSchema);
  }

  resetUser(user: string, options: v1.ResetRequest, timeoutMs: number): Promise<z.output<typeof v1.resetReportSchema>> {
    return this.call('POST', `/v1/leases/${encodeURIComponent(user)}/reset`, options, timeoutMs, v1.resetReportSchema);
  }

  private async call<S extends z.ZodType>(method: string, path: string, body: unknown, timeoutMs: number, schema: S, auth = true): Promise<z.infer<S>> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (auth) headers.authorization = `Bearer ${this.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    const ms = Math.max(1, Math.round(timeoutMs));
    const deadline = performance.now() + ms;
    const payload = body === undefined ? undefined : JSON.stringify(body);
    let status = 0;
    let text = '';
    for (let attempt = 1; ; attempt++) {
      try {
        ({ status, text } = await this.transport(this.url + path, { method, headers, body: payload, timeoutMs: Math.max(1, Math.round(deadline - performance.now())) }));
        break;
      } catch (err) {
        if (err instanceof TimeoutError) throw new HypervisorCallError(this.name, 'timeout', 'E_HYPERVISOR_TIMEOUT', `no answer to ${method} ${path} within ${timeoutMs} ms`, undefined, err);
        // A kept-alive connection the hypervisor closed just as it was reused: once more on a
        // fresh one. Safe for every call made here: a lease for the same user is the same lease.
        // A reused socket can fail again (several closed at once): a few more tries, each on
        // another socket or a fresh one.
        if (((err instanceof StaleSocketError && attempt <= 3) || (attempt === 1 && isStaleConnection(err))) && performance.now() < deadline) continue;
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
      // A code this version does not know (another version's) is E_HTTP, its own code kept in the message.
      const code = isErrorCode(error?.code) ? error.code : 'E_HTTP';
      const said = typeof error?.message === 'string' ? error.message : undefined;
      const message = code !== 'E_HTTP' ? (said ?? `HTTP ${status}`) : `HTTP ${status}${typeof error?.code === 'string' ? ` ${error.code}` : ''}${said ? `: ${said}` : ''}`;
      throw new HypervisorCallError(this.name, 'http', code, message, status);
    }
    try {
      return parseInput(schema, data, `${this.name} ${method} ${path}`);
    } catch (err) {
      throw new HypervisorCallError(this.name, 'bad-response', 'E_HYPERVISOR_BAD_RESPONSE', `unexpected answer: ${(err as Error).message}`, status, err);
    }
  }
}

/** The error and its causes, outermost first. */
function* causes(err: unknown): Generator<{ code?: unknown; message?: unknown }> {
  let cur: unknown = err;
  for (let depth = 0; depth < 5 && cur !== null && typeof cur === 'object'; depth++) {
    yield cur as { code?: unknown; message?: unknown };
    cur = (cur as { cause?: unknown }).cause;
  }
}

/** "connect ECONNREFUSED 127.0.0.1:8750", the socket's own words. */
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
