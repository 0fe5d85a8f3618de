import { readFile, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { systemClock, type Clock } from '../common/clock.js';
import { acquirePidLock, LockHeldError, type PidLock } from '../common/pid-lock.js';
import { serve, type Served } from '../common/serve.js';
import { createHypervisorApp } from './app.js';
import type { HypervisorConfig } from './config.js';
import { createDriver, type DriverSetup } from './drivers.js';
import { startJobs } from './jobs.js';
import { LeaseStore } from './lease-store.js';
import { HypervisorMetrics } from './metrics.js';
import { Pool } from './pool.js';

/**
 * The daemon: take the state directory's lock, prepare the driver, reconcile the pool, start
 * the jobs, listen. Stopping (SIGTERM/SIGINT or `stop()`) runs the same steps backwards.
 */
export interface RunningHypervisor {
  served: Served;
  pool: Pool;
  stop(): Promise<void>;
  /** Settles once the daemon stopped. */
  stopped: Promise<void>;
}

export interface StartOptions {
  /** The config file's name, for messages. */
  source: string;
  logger: Logger;
  clock?: Clock;
  signals?: boolean;
  /** A driver made by the caller instead of from `config.driver` (tests). */
  driver?: DriverSetup;
}

export function lockPathOf(config: HypervisorConfig): string {
  return join(config.stateDir, 'hypervisor.lock');
}

/** Where the running daemon says where it listens (the configured port may be 0). */
export function endpointPathOf(config: HypervisorConfig): string {
  return join(config.stateDir, 'hypervisor.endpoint');
}

/** The running daemon's base URL, as it wrote it, or undefined. */
export async function readEndpoint(config: HypervisorConfig): Promise<string | undefined> {
  const text = await readFile(endpointPathOf(config), 'utf8').catch(() => undefined);
  return text?.trim() || undefined;
}

/** How long a starting daemon waits for a `reclaim --once` pass that holds the lock. */
const RECLAIM_WAIT_MS = 300_000;

/**
 * The state directory's lock. A daemon that finds a reclaim pass holding it (or starting, or
 * passes taking it in turn) waits for it (polling); another daemon holding it is an error at once.
 */
export async function takeStateLock(config: HypervisorConfig, role: 'daemon' | 'reclaim', logger?: Logger): Promise<PidLock> {
  const deadline = Date.now() + RECLAIM_WAIT_MS;
  let logged = false;
  for (;;) {
    try {
      return await acquirePidLock(lockPathOf(config), { role });
    } catch (err) {
      // Taken and released by others while we looked (a pass starting or ending): look again.
      const contended = err instanceof VzsbError && err.code === 'E_LOCKED' && !(err instanceof LockHeldError);
      if (contended && role === 'daemon' && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        continue;
      }
      if (!(err instanceof LockHeldError)) throw err;
      if (role === 'daemon' && (err.role === 'reclaim' || err.role === 'starting') && Date.now() < deadline) {
        if (!logged) logger?.info('daemon.waiting_for_lock', { holder: err.pid, role: err.role });
        logged = true;
        await new Promise((r) => setTimeout(r, 250));
        continue;
      }
      const holder = err.role === 'reclaim' ? 'a reclaim run' : 'another hypervisor daemon';
      throw new VzsbError('E_LOCKED', `${holder} (pid ${err.pid}) holds ${lockPathOf(config)}`, { cause: err });
    }
  }
}

export async function startHypervisor(config: HypervisorConfig, options: StartOptions): Promise<RunningHypervisor> {
  const logger = options.logger;
  const clock = options.clock ?? systemClock;
  const lock = await takeStateLock(config, 'daemon', logger);
  try {
    const { driver, prefix } = options.driver ?? (await createDriver(config.driver, options.source, logger));
    logger.info('driver.preparing', { driver: driver.name });
    await driver.prepare();
    const metrics = new HypervisorMetrics();
    const pool = new Pool({ driver, store: new LeaseStore(config.stateDir), clock, logger, config: config.pool, prefix, observer: metrics });
    await pool.start();
    const jobs = startJobs(pool, config.pool, logger);
    const app = createHypervisorApp({ driver, pool, clock, logger, config, metrics, reclaimNow: jobs.runReclaim });
    const served = await serve(app, {
      listen: config.listen,
      logger,
      signals: options.signals ?? true,
      onStop: async () => {
        await jobs.stop();
        await pool.stop();
        await unlink(endpointPathOf(config)).catch(() => {});
        await lock.release();
      },
    }).catch(async (err: unknown) => {
      await jobs.stop();
      await pool.stop();
      throw new VzsbError('E_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`, { cause: err });
    });
    await writeFile(endpointPathOf(config), `${served.url}\n`, { mode: 0o600 });
    return { served, pool, stop: () => served.stop(), stopped: served.stopped };
  } catch (err) {
    await lock.release();
    throw err;
  }
}
