import { z } from 'zod';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { InputError, parseInput } from '../../common/validate.js';
import { lxcDriverConfigSchema } from '../drivers/lxc-config.js';
import { LxcDriver } from '../drivers/lxc.js';
import { MemoryDriver } from '../drivers/memory.js';
import type { ContainerDriver } from '../drivers/types.js';
import { driverOptions, type DriverConfig } from './config.js';

/**
 * From the `driver:` section to a driver. Each kind validates its own options; errors name
 * them under `driver.` like every other config field.
 */
const memoryOptionsSchema = z.strictObject({
  prefix: z.string().regex(/^[a-z][a-z0-9-]{0,11}$/, 'expected lower-case letters, digits and "-", starting with a letter').default('vzsb-'),
  latencyMs: z.number().int().min(0).max(10_000).default(0),
});

export interface DriverSetup {
  driver: ContainerDriver;
  /** Container ids are "<prefix><number>". */
  prefix: string;
}

/** Validate the driver's options now (config load), so a bad option stops the start with its path. */
export function checkDriverConfig(config: DriverConfig, source: string): void {
  parseOptions(config, source);
}

export async function createDriver(config: DriverConfig, source: string, logger: Logger): Promise<DriverSetup> {
  const parsed = parseOptions(config, source);
  switch (parsed.kind) {
    case 'memory':
      logger.warn('driver.memory', { message: 'the in-memory driver runs no containers: for tests and demos only' });
      return { driver: new MemoryDriver(parsed.options), prefix: parsed.options.prefix };
    case 'lxc':
      return { driver: new LxcDriver({ config: parsed.options, logger }), prefix: parsed.options.prefix };
    case 'openvz':
      return createOpenvz(parsed.options, source, logger);
  }
}

type Parsed =
  | { kind: 'memory'; options: z.infer<typeof memoryOptionsSchema> }
  | { kind: 'lxc'; options: z.infer<typeof lxcDriverConfigSchema> }
  | { kind: 'openvz'; options: Record<string, unknown> };

function underDriver<S extends z.ZodType>(schema: S, options: Record<string, unknown>, source: string): z.infer<S> {
  try {
    return parseInput(schema, options, source);
  } catch (err) {
    if (!(err instanceof InputError)) throw err;
    throw new InputError(source, err.issues.map((i) => ({ path: i.path ? `driver.${i.path}` : 'driver', message: i.message })));
  }
}

function parseOptions(config: DriverConfig, source: string): Parsed {
  const options = driverOptions(config);
  switch (config.kind) {
    case 'memory':
      return { kind: 'memory', options: underDriver(memoryOptionsSchema, options, source) };
    case 'lxc':
      return { kind: 'lxc', options: underDriver(lxcDriverConfigSchema, options, source) };
    case 'openvz':
      return { kind: 'openvz', options };
  }
}

/** The OpenVZ driver module is loaded only when configured; its schema checks the options. */
async function createOpenvz(options: Record<string, unknown>, source: string, logger: Logger): Promise<DriverSetup> {
  const specifier = '../drivers/openvz.js';
  let mod: { OpenVzDriver?: new (deps: { config: never; logger: Logger }) => ContainerDriver; openVzDriverConfigSchema?: z.ZodType };
  try {
    mod = (await import(specifier)) as typeof mod;
  } catch (err) {
    throw new VzsbError('E_CONFIG', `${source}: driver.kind: the openvz driver is not available in this installation`, { cause: err });
  }
  if (!mod.OpenVzDriver || !mod.openVzDriverConfigSchema) {
    throw new VzsbError('E_CONFIG', `${source}: driver.kind: the openvz driver module does not export OpenVzDriver`);
  }
  const config = underDriver(mod.openVzDriverConfigSchema, options, source) as { prefix: string };
  return { driver: new mod.OpenVzDriver({ config: config as never, logger }), prefix: config.prefix };
}
