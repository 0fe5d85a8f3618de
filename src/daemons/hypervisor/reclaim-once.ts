import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import { systemClock } from '../common/clock.js';
import { LockHeldError } from '../common/pid-lock.js';
import { localUrl } from '../common/serve.js';
import type { HypervisorConfig } from './config.js';
import { createDriver } from './drivers.js';
import { LeaseStore } from './lease-store.js';
import type { ReclaimReport } from '../../api/v1/hypervisor.js';
import { Pool } from './pool.js';
import { readEndpoint, takeStateLock } from './serve.js';

/**
 * `vzsb hypervisor reclaim --once`, the cron.d backstop. While the daemon runs it holds the
 * state lock; then this asks the daemon to run its reclaim pass (POST /v1/reclaim with an
 * admin token) so that only one process ever changes the pool. While the daemon is down it
 * takes the lock itself and does the same work: reconcile, reclaim, reset, refill.
 */
export interface ReclaimOnceResult {
  via: 'daemon' | 'direct';
  report: ReclaimReport;
}

export async function reclaimOnce(config: HypervisorConfig, options: { source: string; logger: Logger; fetch?: typeof fetch }): Promise<ReclaimOnceResult> {
  let lock;
  try {
    lock = await takeStateLock(config, 'reclaim');
  } catch (err) {
    if (!(err instanceof VzsbError) || !(err.cause instanceof LockHeldError) || err.cause.role !== 'daemon') throw err;
    return { via: 'daemon', report: await askDaemon(config, options.fetch ?? fetch, (err as VzsbError).message) };
  }
  try {
    const { driver, prefix } = await createDriver(config.driver, options.source, options.logger);
    await driver.prepare();
    const pool = new Pool({ driver, store: new LeaseStore(config.stateDir), clock: systemClock, logger: options.logger, config: config.pool, prefix });
    await pool.start();
    const report = await pool.reclaim();
    await pool.stop();
    return { via: 'direct', report };
  } finally {
    await lock.release();
  }
}

async function askDaemon(config: HypervisorConfig, fetchImpl: typeof fetch, held: string): Promise<ReclaimReport> {
  const token = config.tokens.admin[0];
  if (!token) throw new VzsbError('E_LOCKED', `${held}; no admin token is configured to ask it to reclaim`);
  const base = (await readEndpoint(config)) ?? localUrl(config.listen.host, config.listen.port);
  const url = `${base}/v1/reclaim`;
  let res: Response;
  try {
    res = await fetchImpl(url, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' }, body: '{}', signal: AbortSignal.timeout(120_000) });
  } catch (err) {
    throw new VzsbError('E_LOCKED', `${held}, and it does not answer at ${url}: ${(err as Error).message}`, { cause: err });
  }
  const body = (await res.json().catch(() => undefined)) as { error?: { message?: string } } | undefined;
  if (!res.ok) throw new VzsbError('E_API', `the daemon at ${url} answered ${res.status}: ${body?.error?.message ?? 'no message'}`);
  return body as ReclaimReport;
}

