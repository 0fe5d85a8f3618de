import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { InputError, parseInput } from '../../common/validate.js';
import { tokensSchema } from '../common/auth.js';
import { listenSchema } from '../common/serve.js';

/**
 * /etc/vzsandbox/balancer.yaml, validated once at start; errors name the dotted path of the
 * bad field. Each hypervisor entry carries the token the balancer presents to it: that token
 * needs the `lease` and the `admin` scope on the hypervisor (lookups and resets are admin calls).
 */
export const tokenValue = z
  .string()
  .min(16, 'a token of at least 16 characters')
  .regex(/^[\x21-\x7e]+$/, 'a token of printable ASCII without spaces');

const hypervisorEntrySchema = z
  .strictObject({
    name: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/, 'expected a host name (letters, digits, ".", "_", "-")'),
    url: z
      .string()
      .url('expected an http:// or https:// URL')
      .regex(/^https?:\/\//, 'expected an http:// or https:// URL')
      .transform((u) => u.replace(/\/+$/, '')),
    token: tokenValue.optional(),
    /** A file holding the token (first line), instead of `token`. Read at start. */
    tokenFile: z.string().startsWith('/', 'expected an absolute path').optional(),
  })
  .refine((h) => (h.token === undefined) !== (h.tokenFile === undefined), { message: 'set exactly one of token and tokenFile', path: ['token'] });

const healthSchema = z.strictObject({
  /** How often every hypervisor's /healthz is polled. */
  intervalMs: z.number().int().min(100).max(60_000).default(2000),
  /** A poll slower than this counts as a failure. */
  timeoutMs: z.number().int().min(50).max(30_000).default(1000),
});

const leaseSchema = z.strictObject({
  /**
   * Everything one lease request may take, all attempts on all candidates together. Keep it
   * below the gateways' per-request timeout (20 s by default) so they get this answer.
   */
  deadlineMs: z.number().int().min(100).max(120_000).default(18_000),
  /** Longest single attempt on one hypervisor (a hypervisor may build a container meanwhile). */
  attemptTimeoutMs: z.number().int().min(50).max(120_000).default(12_000),
  /** Asking every hypervisor that is up who holds a user's lease (only when the user's home is down). */
  lookupTimeoutMs: z.number().int().min(50).max(30_000).default(2000),
  /**
   * How long a user whose lease is on a hypervisor that is down waits for it to come back
   * (E_HOLDER_DOWN, retried by the gateway) before getting a new container elsewhere. Keep it
   * below the gateways' lease timeout (30 s by default) so the move can still happen.
   */
  holderWaitMs: z.number().int().min(0).max(120_000).default(10_000),
  /** Lease requests worked on at once; more wait in a queue. */
  maxConcurrent: z.number().int().min(1).max(10_000).default(128),
  /** Lease requests waiting at most; more are refused at once with E_BUSY (503). */
  maxQueued: z.number().int().min(0).max(100_000).default(2048),
});
const LEASE_DEFAULTS = { deadlineMs: 18_000, attemptTimeoutMs: 12_000, lookupTimeoutMs: 2000, holderWaitMs: 10_000, maxConcurrent: 128, maxQueued: 2048 };

export const balancerConfigSchema = z
  .strictObject({
    listen: listenSchema.default({ host: '127.0.0.1', port: 8760 }),
    tokens: tokensSchema,
    hypervisors: z.array(hypervisorEntrySchema).min(1, 'at least one hypervisor'),
    health: healthSchema.default({ intervalMs: 2000, timeoutMs: 1000 }),
    lease: leaseSchema.default(LEASE_DEFAULTS),
    /** Status, sessions and reset calls to each hypervisor. */
    adminTimeoutMs: z.number().int().min(50).max(120_000).default(10_000),
    /** Largest accepted request body. */
    bodyLimitBytes: z.number().int().min(256).max(1048576).default(16384),
    log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).default({ level: 'info' }),
  })
  .superRefine((c, ctx) => {
    const seen = new Set<string>();
    c.hypervisors.forEach((h, i) => {
      if (seen.has(h.name)) ctx.addIssue({ code: 'custom', message: `duplicate hypervisor name "${h.name}"`, path: ['hypervisors', i, 'name'] });
      seen.add(h.name);
    });
  });

export type BalancerConfigInput = z.input<typeof balancerConfigSchema>;
type Parsed = z.infer<typeof balancerConfigSchema>;

/** A hypervisor as the balancer uses it: its token resolved. */
export interface HypervisorTarget {
  name: string;
  url: string;
  token: string;
}

export type BalancerConfig = Omit<Parsed, 'hypervisors'> & { hypervisors: HypervisorTarget[] };

/** Validate a config value; `tokenFile` entries are read here. */
export async function parseBalancerConfig(value: unknown, source = 'balancer config'): Promise<BalancerConfig> {
  const parsed = parseInput(balancerConfigSchema, value, source);
  const hypervisors: HypervisorTarget[] = [];
  for (const [i, h] of parsed.hypervisors.entries()) {
    hypervisors.push({ name: h.name, url: h.url, token: h.token ?? (await readTokenFile(h.tokenFile!, `hypervisors[${i}].tokenFile`, source)) });
  }
  return { ...parsed, hypervisors };
}

export async function loadBalancerConfig(path: string): Promise<BalancerConfig> {
  return parseBalancerConfig(await readYamlFile(path), path);
}

/** A YAML file's content; unreadable or invalid files are E_CONFIG errors naming the file. */
export async function readYamlFile(path: string): Promise<unknown> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VzsbError('E_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  try {
    return parseYaml(text);
  } catch (err) {
    throw new VzsbError('E_CONFIG', `${path}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
}

async function readTokenFile(file: string, field: string, source: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw new InputError(source, [{ path: field, message: `cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}` }]);
  }
  const token = text.split('\n')[0]!.trim();
  const check = tokenValue.safeParse(token);
  if (!check.success) throw new InputError(source, [{ path: field, message: `${file}: expected ${check.error.issues[0]!.message}` }]);
  return token;
}
