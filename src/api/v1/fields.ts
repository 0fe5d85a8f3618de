import { z } from 'zod';
import { parsePublicKey } from '../../daemons/common/ssh-key.js';

/**
 * The fields the v1 HTTP API's documents are made of (docs/api/*.openapi.yaml). Requests are
 * checked strictly (unknown fields refused); answers are read loosely (a newer server may add a
 * field), and their types, `Known<...>`, drop the open index so that a server building an
 * answer `satisfies` it gets a compile error for a field the contract does not have.
 */

/** Unix user names as useradd accepts them by default (NAME_REGEX), at most 32 characters. */
export const userNameSchema = z
  .string()
  .regex(/^[a-z_][a-z0-9_-]{0,31}$/, 'expected a Unix user name (a-z or _ first, then up to 31 of a-z 0-9 _ -)');

export const publicKeySchema = z.string().superRefine((value, ctx) => {
  const parsed = parsePublicKey(value);
  if ('error' in parsed) ctx.addIssue({ code: 'custom', message: `expected ${parsed.error}` });
});

/** A container id in a request path, as the pool names them. */
export const containerIdSchema = z.string().regex(/^[a-z][a-z0-9-]{0,20}\d{1,9}$/, 'expected a container id like "vzsb-0007"');

/** A login session's id, chosen by the gateway (host, process, random part). */
export const sessionIdSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:@-]{0,127}$/, 'expected a session id (letters, digits, . _ : @ -, at most 128)');

export const hypervisorNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a hypervisor name');

// What a lease answer carries that a gateway connects to: checked before anything connects.
export const containerNameSchema = z.string().regex(/^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/, 'expected a container name');
export const addressSchema = z.string().regex(/^[A-Za-z0-9.:-]{1,253}$/, 'expected an IP address or host name');
export const portSchema = z.number().int().min(1).max(65535);
export const fingerprintSchema = z.string().regex(/^SHA256:[A-Za-z0-9+/]{43}$/, 'expected a SHA256 key fingerprint');
export const hostKeyLineSchema = z.string().regex(/^[a-z0-9-]+ [A-Za-z0-9+/=]+( .*)?$/, 'expected an OpenSSH public key line');
export const secondsLeftSchema = z.number().min(0).nullable();

/** ISO 8601 time, as the daemons write it (`new Date(ms).toISOString()`). */
export const timeSchema = z.string();
export const countSchema = z.number().int().min(0);

/** `{"error": {"code", "message"}}`, the body of every error answer. */
export const errorBodySchema = z.looseObject({
  error: z.looseObject({
    code: z.string(),
    message: z.string(),
    /** On 5xx: the id to find in the daemon log. */
    requestId: z.string().optional(),
    /** On E_INVALID: each bad field. */
    issues: z.array(z.looseObject({ path: z.string(), message: z.string() })).optional(),
  }),
});
export type ErrorBody = Known<z.output<typeof errorBodySchema>>;

/** A request body that must be empty (`{}`; an empty body counts as one). */
export const emptyRequestSchema = z.strictObject({});

/** T without the open index of a loose object, at every depth: the fields the contract names. */
export type Known<T> = T extends readonly (infer U)[]
  ? Known<U>[]
  : T extends object
    ? { [K in keyof T as string extends K ? never : K]: Known<T[K]> }
    : T;

/**
 * One route of the API: its token scope (none: no authentication), body, query and what it
 * answers by status. Answers not listed are errors (`errorBodySchema`). The OpenAPI files are
 * checked against these tables (test/api/contract.test.ts), and the served routes against both.
 */
export interface Route {
  scope?: 'lease' | 'admin' | 'metrics';
  body?: z.ZodType;
  query?: Record<string, z.ZodType>;
  answers: Record<number, z.ZodType | 'text'>;
}
