import { request as httpRequest, type IncomingMessage } from 'node:http';
import { httpAnswer, isErrorCode, studentSentence } from '../common/error-catalog.js';
import { VzsbError, ValidationError, type ErrorCode } from '../common/errors.js';

/**
 * The lease API as the gateway uses it: POST /v1/leases and DELETE /v1/leases/:user on a
 * list of balancers, tried in order until one answers, within one total deadline.
 * node:http directly (not fetch): loading fetch's implementation costs more than the request.
 */
export interface Lease {
  container: string;
  address: string;
  sshPort: number;
  /** OpenSSH public key line of the container's host key, when the API sends it. */
  hostKey: string | undefined;
  hostKeyFingerprint: string;
  user: string;
  hypervisor: string | undefined;
  /** The balancer that granted it (where it is released). */
  balancer: string;
  /** How long the hypervisor took, as it reports. */
  ms: number | undefined;
  /** The user's lease was on this hypervisor, which did not come back in time: this is a new container. */
  movedFrom: string | undefined;
  /** Seconds until the maximum session length ends the lease, when the hypervisor has one. */
  secondsLeft: number | undefined;
}

/** What the hypervisor counts for this login (docs/gateway.md, sessions). */
export interface SessionRequest {
  /** This login's id: its key stays accepted until this session is released. */
  session?: string;
  /** The user's session limit, counted over every gateway where the lease lives. */
  maxSessions?: number;
}

export interface Released {
  balancer: string;
  /** false: other sessions (on any gateway) keep the lease. */
  released: boolean;
  /** Sessions the lease still has, when the answer says. */
  sessions: number | undefined;
}

export interface BalancerClientOptions {
  balancers: readonly string[];
  token: string;
  connectTimeoutMs: number;
  requestTimeoutMs: number;
  /** Called before each attempt (progress, log). */
  onAttempt?: (balancer: string, attempt: number) => void;
  /** Called when a balancer failed and the next is tried. */
  onFailover?: (balancer: string, reason: string) => void;
  /** Called when an answer says to wait and ask again (E_HOLDER_DOWN, E_BUSY), with its code. */
  onWait?: (code: string, message: string) => void;
  /** Called once a request is written: the caller may start CPU-heavy work while it is served. */
  onSent?: () => void;
  now?: () => number;
}

interface Answer {
  status: number;
  body: unknown;
}

/** Why one attempt failed, and whether another balancer may do better. */
class AttemptError extends Error {
  constructor(
    message: string,
    readonly retry: boolean,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Answers that mean "ask again in a moment" (with Retry-After): retried until the deadline. */
function isWait(code: string | undefined): boolean {
  return httpAnswer('balancer', code)?.retry === 'wait';
}

/**
 * The code a login ends with when a balancer's answer is final: the one the catalog names for
 * it (E_POOL_FULL is E_NO_CAPACITY), the answer's own when the student has a sentence for it
 * (E_TOO_MANY), else E_LEASE_REFUSED.
 */
function finalCode(code: string | undefined): ErrorCode {
  const answer = httpAnswer('balancer', code);
  if (isErrorCode(answer?.gatewayCode)) return answer.gatewayCode;
  return answer && isErrorCode(code) && studentSentence(code) !== undefined ? code : 'E_LEASE_REFUSED';
}

const FINAL_MESSAGE: Partial<Record<ErrorCode, string>> = { E_TOO_MANY: 'you have too many sessions open', E_NO_CAPACITY: 'all sandboxes are in use right now' };

export async function requestLease(options: BalancerClientOptions, user: string, publicKey: string, totalMs: number, session: SessionRequest = {}): Promise<Lease> {
  const body = JSON.stringify({ user, publicKey, ...session });
  return withFailover(options, totalMs, 'E_BALANCER_DOWN', async (balancer, left) => {
    const answer = await call(balancer, 'POST', '/v1/leases', options, left, body);
    if (answer.status === 200) return parseLease(answer.body, balancer);
    throw refusal(answer, balancer);
  });
}

/** Release `user`'s lease; the granting balancer first. Resolves with where it was released, or throws. */
export async function releaseLease(options: BalancerClientOptions, user: string, first: string | undefined, totalMs: number, session?: string): Promise<string> {
  return (await releaseSession(options, user, first, totalMs, session)).balancer;
}

/**
 * End this login's session of `user`'s lease (the hypervisor ends the lease with its last
 * session, from whichever gateway); without `session`, the whole lease. The granting balancer first.
 */
export async function releaseSession(options: BalancerClientOptions, user: string, first: string | undefined, totalMs: number, session?: string): Promise<Released> {
  const ordered = first ? [first, ...options.balancers.filter((b) => b !== first)] : [...options.balancers];
  const query = session === undefined ? '' : `?session=${encodeURIComponent(session)}`;
  return withFailover({ ...options, balancers: ordered }, totalMs, 'E_RELEASE_FAILED', async (balancer, left) => {
    const answer = await call(balancer, 'DELETE', `/v1/leases/${encodeURIComponent(user)}${query}`, options, left);
    if (answer.status === 404) return { balancer, released: true, sessions: 0 };
    if (answer.status === 200) {
      const b = (answer.body ?? {}) as { released?: unknown; sessions?: unknown };
      return { balancer, released: b.released !== false, sessions: typeof b.sessions === 'number' ? b.sessions : undefined };
    }
    throw refusal(answer, balancer);
  });
}

async function withFailover<T>(options: BalancerClientOptions, totalMs: number, downCode: ErrorCode, attempt: (balancer: string, leftMs: number) => Promise<T>): Promise<T> {
  const now = options.now ?? (() => performance.now());
  const deadline = now() + totalMs;
  const reasons: string[] = [];
  let lastCode: string | undefined;
  let backoff = 100;
  for (let round = 1; ; round++) {
    for (const balancer of options.balancers) {
      const left = deadline - now();
      if (left <= 0) break;
      options.onAttempt?.(balancer, round);
      try {
        return await attempt(balancer, left);
      } catch (err) {
        if (!(err instanceof AttemptError)) throw err;
        if (!err.retry) {
          const code = finalCode(err.code);
          throw new VzsbError(code, FINAL_MESSAGE[code] ?? 'the sandbox service refused the request', { details: err.message });
        }
        reasons.push(err.message);
        lastCode = err.code;
        if (err.code && isWait(err.code)) options.onWait?.(err.code, err.message);
        else options.onFailover?.(balancer, err.message);
      }
    }
    const left = deadline - now();
    if (left <= backoff) {
      const details = `${round} round(s) over ${options.balancers.length} balancer(s) in ${totalMs} ms: ${reasons.slice(-options.balancers.length).join('; ')}`;
      if (lastCode === 'E_HOLDER_DOWN') throw new VzsbError('E_HOLDER_DOWN', 'the host of your sandbox did not come back in time', { details });
      if (lastCode === 'E_BUSY') throw new VzsbError('E_BUSY', 'the sandbox service is busy', { details });
      throw new VzsbError(downCode, 'the sandbox service does not answer', { details });
    }
    await new Promise((r) => setTimeout(r, backoff));
    backoff = Math.min(1000, backoff * 2);
  }
}

/**
 * A non-2xx answer: whether the next balancer may do better is the error catalog's word for the
 * answer's code (capacity, auth and request problems are final; 5xx go to the next balancer);
 * an answer without a code the catalog has for the balancer, by its status.
 */
function refusal(answer: Answer, balancer: string): AttemptError {
  const error = (answer.body as { error?: { code?: unknown; message?: unknown } } | undefined)?.error;
  const code = typeof error?.code === 'string' ? error.code : undefined;
  const message = `${balancer}: HTTP ${answer.status}${code ? ` ${code}` : ''}${typeof error?.message === 'string' ? `: ${error.message}` : ''}`;
  if (answer.status === 401 || answer.status === 403) return new AttemptError(message, false, answer.status === 401 ? 'E_UNAUTHORIZED' : 'E_FORBIDDEN');
  const known = httpAnswer('balancer', code);
  if (known) return new AttemptError(message, known.retry !== 'no', code);
  if (answer.status >= 400 && answer.status < 500 && answer.status !== 404 && answer.status !== 408 && answer.status !== 429) return new AttemptError(message, false, code ?? 'E_HTTP');
  return new AttemptError(message, true, code);
}

async function call(balancer: string, method: string, path: string, options: BalancerClientOptions, leftMs: number, body?: string): Promise<Answer> {
  const url = new URL(balancer + path);
  const request = url.protocol === 'https:' ? (await import('node:https')).request : httpRequest;
  return new Promise<Answer>((resolve, reject) => {
    const req = request(
      url,
      {
        method,
        agent: false,
        headers: {
          authorization: `Bearer ${options.token}`,
          accept: 'application/json',
          ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }),
        },
      },
      (res: IncomingMessage) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > 256 * 1024) req.destroy(new Error('answer larger than 256 KiB'));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          const text = Buffer.concat(chunks).toString('utf8');
          let parsed: unknown;
          try {
            parsed = text ? JSON.parse(text) : undefined;
          } catch {
            reject(new AttemptError(`${balancer}: HTTP ${res.statusCode}, not JSON: ${JSON.stringify(text.slice(0, 80))}`, true));
            return;
          }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
        res.on('error', (e) => reject(new AttemptError(`${balancer}: ${e.message}`, true)));
      },
    );
    // The connect gets a short timeout of its own: a dead balancer must not eat the lease's time.
    // Both are cut to the time the whole lease has left.
    const started = performance.now();
    const connectMs = Math.max(1, Math.min(options.connectTimeoutMs, leftMs));
    let timer = setTimeout(() => req.destroy(new Error(`no TCP connection within ${Math.round(connectMs)} ms`)), connectMs);
    req.on('socket', (socket) => {
      socket.once('connect', () => {
        clearTimeout(timer);
        const answerMs = Math.max(1, Math.min(options.requestTimeoutMs, leftMs - (performance.now() - started)));
        timer = setTimeout(() => req.destroy(new Error(`no answer within ${Math.round(answerMs)} ms`)), answerMs);
      });
    });
    req.once('finish', () => options.onSent?.());
    req.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(new AttemptError(`${balancer}: ${e.message}`, true));
    });
    req.end(body);
  });
}

const FINGERPRINT = /^SHA256:[A-Za-z0-9+/]{43}$/;

/**
 * The API's answer, checked before anything connects to the address in it. It accepts exactly
 * what the contract's gatewayLeaseSchema (src/api/v1/balancer.ts) accepts, by hand to keep zod
 * off the login path; test/api/contract.test.ts holds the two to one table of documents.
 */
export function parseLease(body: unknown, balancer: string): Lease {
  const source = `lease answer from ${balancer}`;
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw new ValidationError('', 'a JSON object', body, source);
  const b = body as Record<string, unknown>;
  const str = (key: string, re: RegExp, expected: string): string => {
    const v = b[key];
    if (typeof v !== 'string' || !re.test(v)) throw new ValidationError(key, expected, v, source);
    return v;
  };
  const container = str('container', /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'a container name');
  const address = str('address', /^[A-Za-z0-9.:-]{1,253}$/, 'an IP address or host name');
  const hostKeyFingerprint = str('hostKeyFingerprint', FINGERPRINT, 'a SHA256 key fingerprint');
  const user = str('user', /^[a-z_][a-z0-9_-]{0,31}$/, 'a user name');
  const port = b.sshPort;
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) throw new ValidationError('sshPort', 'a port 1-65535', port, source);
  const hostKey = b.hostKey === undefined || b.hostKey === null ? undefined : str('hostKey', /^[a-z0-9-]+ [A-Za-z0-9+/=]+( .*)?$/, 'an OpenSSH public key line');
  const hypervisor = typeof b.hypervisor === 'string' ? b.hypervisor : undefined;
  const ms = typeof b.ms === 'number' ? b.ms : undefined;
  const left = b.secondsLeft;
  if (left !== undefined && left !== null && (typeof left !== 'number' || !Number.isFinite(left) || left < 0)) throw new ValidationError('secondsLeft', 'a number of seconds, or null', left, source);
  const secondsLeft = typeof left === 'number' ? left : undefined;
  const movedFrom = typeof b.movedFrom === 'string' ? b.movedFrom : undefined;
  return { container, address, sshPort: port, hostKey, hostKeyFingerprint, user, hypervisor, balancer, ms, movedFrom, secondsLeft };
}
