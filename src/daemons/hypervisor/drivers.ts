import { z } from 'zod';
import type { Logger } from '../../common/log.js';
import { InputError, parseInput } from '../../common/validate.js';
import { lxcDriverConfigSchema } from '../drivers/lxc-config.js';
import { LxcDriver } from '../drivers/lxc.js';
import { MemoryDriver } from '../drivers/memory.js';
import { OpenVzDriver, openVzDriverConfigSchema } from '../drivers/openvz.js';
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
      return { driver: new OpenVzDriver({ config: parsed.options, logger }), prefix: parsed.options.prefix };
  }
}

type Parsed =
  | { kind: 'memory'; options: z.infer<typeof memoryOptionsSchema> }
  | { kind: 'lxc'; options: z.infer<typeof lxcDriverConfigSchema> }
  | { kind: 'openvz'; options: z.infer<typeof openVzDriverConfigSchema> };

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
      return { kind: 'openvz', options: underDriver(openVzDriverConfigSchema, options, source) };
  }
}
