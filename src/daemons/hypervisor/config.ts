import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import { parseInput } from '../../common/validate.js';
import { tokensSchema } from '../common/auth.js';
import { listenSchema } from '../common/serve.js';

/** /etc/vzsandbox/hypervisor.yaml, validated once at start; errors name the dotted path of the bad field. */
const scheduleEntrySchema = z.strictObject({
  /** node-schedule cron expression, e.g. "50 8 * * 1-5" (08:50 on weekdays). */
  cron: z.string().min(9),
  /** The standby size from that moment until the next entry fires. */
  standby: z.number().int().min(0),
});

const MAX_SESSION_ERROR = 'expected a positive number of seconds, or "none" for no maximum';

export const poolConfigSchema = z
  .strictObject({
    standby: z.number().int().min(0),
    max: z.number().int().min(1).max(9999),
    graceSeconds: z.number().min(0).default(0),
    idleSeconds: z.number().positive().default(900),
    /** A leased container nobody logged into is reclaimed after this long. Default: idleSeconds. */
    loginSeconds: z.number().positive().optional(),
    /**
     * The longest a lease lives, from its grant, sessions or not (default 8 hours); the lease
     * answer carries the deadline, so the gateway warns the student before it. "none" is the
     * explicit opt-out; 0 is refused (it once meant "no limit" by accident).
     */
    maxSessionSeconds: z.union([z.number().positive({ error: MAX_SESSION_ERROR }), z.literal('none')], { error: MAX_SESSION_ERROR }).default(28800),
    /** How often the reclaim job checks sessions and refills the pool. */
    checkSeconds: z.number().int().min(1).max(3600).default(15),
    /** Containers the runtime has but the state file does not: destroyed, or adopted as dirty (then reset). */
    orphans: z.enum(['destroy', 'adopt']).default('destroy'),
    /**
     * As a user's home, how long it remembers that the user's lease was placed on another
     * hypervisor (the pool here was full). Longer than any lease lives.
     */
    claimSeconds: z.number().int().min(60).default(86_400),
    /** Parallel container builds. */
    buildConcurrency: z.number().int().min(1).max(64).default(4),
    schedule: z.array(scheduleEntrySchema).optional(),
  })
  .refine((p) => p.standby <= p.max, { message: 'standby must not exceed max', path: ['standby'] });
export type PoolConfig = z.infer<typeof poolConfigSchema>;

/** `driver:` is `kind` plus that driver's own options, which its factory validates (./drivers.ts). */
export const driverConfigSchema = z.looseObject({
  kind: z.enum(['lxc', 'openvz', 'memory']),
});
export type DriverConfig = z.infer<typeof driverConfigSchema>;

export const hypervisorConfigSchema = z.strictObject({
  listen: listenSchema.default({ host: '127.0.0.1', port: 8750 }),
  tokens: tokensSchema,
  /** Port of the containers' sshd, reported with each lease. */
  sshPort: z.number().int().min(1).max(65535).default(22),
  stateDir: z.string().startsWith('/').default('/var/lib/vzsandbox/hypervisor'),
  /** Largest accepted request body. */
  bodyLimitBytes: z.number().int().min(256).max(1048576).default(16384),
  log: z.strictObject({ level: z.enum(['debug', 'info', 'warn', 'error']).default('info') }).default({ level: 'info' }),
  pool: poolConfigSchema,
  driver: driverConfigSchema,
  /** What /healthz checks beyond the daemon itself (./health.ts). */
  health: z
    .strictObject({
      /** Free space where containers are made below which no new ones are placed here. */
      minFreeMiB: z.number().min(0).default(1024),
      /** Also connect to one running container's sshd over the container network. */
      sshProbe: z.boolean().default(true),
    })
    .default({ minFreeMiB: 1024, sshProbe: true }),
});
export type HypervisorConfig = z.infer<typeof hypervisorConfigSchema>;

export function parseHypervisorConfig(value: unknown, source = 'hypervisor config'): HypervisorConfig {
  return parseInput(hypervisorConfigSchema, value, source);
}

/** Drop `kind`: what is left are the driver's own options. */
export function driverOptions(driver: DriverConfig): Record<string, unknown> {
  const { kind: _kind, ...rest } = driver;
  return rest;
}

export async function loadHypervisorConfig(path: string): Promise<HypervisorConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VzsbError('E_CONFIG', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  let data: unknown;
  try {
    data = parseYaml(text);
  } catch (err) {
    throw new VzsbError('E_CONFIG', `${path}: not valid YAML: ${(err as Error).message}`, { cause: err });
  }
  return parseHypervisorConfig(data, path);
}
