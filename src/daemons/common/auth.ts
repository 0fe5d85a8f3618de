import { createHash, timingSafeEqual } from 'node:crypto';
import type { Middleware } from 'koa';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';

/**
 * Bearer tokens with scopes. A token is compared against every configured token in constant
 * time (SHA-256 digests through timingSafeEqual, no early exit), so neither the match nor its
 * position leaks through timing. Tokens never reach a log line: failures are reported by reason.
 */
export type AuthFailure = 'missing' | 'invalid' | 'forbidden';

const tokenSchema = z
  .string()
  .min(16, 'a token of at least 16 characters')
  .regex(/^[\x21-\x7e]+$/, 'a token of printable ASCII without spaces');

/** `tokens:` in a daemon config: lists of tokens per scope. One token may appear under several scopes. */
export const tokensSchema = z.strictObject({
  lease: z.array(tokenSchema).default([]),
  admin: z.array(tokenSchema).default([]),
  metrics: z.array(tokenSchema).default([]),
});
export type Tokens = z.infer<typeof tokensSchema>;
export type Scope = keyof Tokens;

export class TokenAuth<S extends string = Scope> {
  private readonly entries: { digest: Buffer; scopes: Set<S> }[] = [];

  constructor(tokens: Partial<Record<S, readonly string[]>>) {
    const byToken = new Map<string, Set<S>>();
    for (const [scope, list] of Object.entries(tokens) as [S, readonly string[] | undefined][]) {
      for (const token of list ?? []) {
        const set = byToken.get(token) ?? new Set<S>();
        set.add(scope);
        byToken.set(token, set);
      }
    }
    for (const [token, scopes] of byToken) this.entries.push({ digest: digest(token), scopes });
  }

  /** Check an Authorization header value for `scope`. */
  check(header: string | undefined, scope: S): 'ok' | AuthFailure {
    const m = /^Bearer +(\S+) *$/i.exec(header ?? '');
    if (!m) return 'missing';
    const presented = digest(m[1]!);
    let scopes: Set<S> | undefined;
    for (const e of this.entries) {
      if (timingSafeEqual(e.digest, presented)) scopes = e.scopes;
    }
    if (!scopes) return 'invalid';
    return scopes.has(scope) ? 'ok' : 'forbidden';
  }
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Koa middleware: 401 without or with an unknown token, 403 with a token lacking `scope`. */
export function requireScope<S extends string>(auth: TokenAuth<S>, scope: S, onFailure?: (reason: AuthFailure, scope: S) => void): Middleware {
  return async (ctx, next) => {
    const result = auth.check(ctx.get('authorization') || undefined, scope);
    if (result === 'ok') return next();
    onFailure?.(result, scope);
    if (result === 'forbidden') throw new VzsbError('E_FORBIDDEN', `this token does not grant the "${scope}" scope`);
    ctx.set('WWW-Authenticate', `Bearer realm="vzsandbox", scope="${scope}"`);
    throw new VzsbError('E_UNAUTHORIZED', result === 'missing' ? 'a bearer token is required (Authorization: Bearer <token>)' : 'the bearer token is not valid');
  };
}
