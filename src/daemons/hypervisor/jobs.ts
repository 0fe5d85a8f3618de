import schedule from 'node-schedule';
import { VzsbError } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { PoolConfig } from './config.js';
import type { ReclaimReport } from '../../api/v1/hypervisor.js';
import type { Pool } from './pool.js';

/**
 * In-process jobs on node-schedule: the reclaim pass (idle, grace, limits, resets, refill)
 * every `checkSeconds`, and the standby schedule. A pass never overlaps another: asking while
 * one runs returns that one.
 */
export interface Jobs {
  runReclaim(): Promise<ReclaimReport>;
  /** One job per `pool.schedule` entry, in order. */
  standbyJobs: schedule.Job[];
  stop(): Promise<void>;
}

export function startJobs(pool: Pool, config: PoolConfig, logger: Logger): Jobs {
  let running: Promise<ReclaimReport> | undefined;
  const runReclaim = (): Promise<ReclaimReport> => {
    running ??= pool
      .reclaim()
      .then((report) => {
        if (report.reclaimed.length || report.repaired.length) logger.info('job.reclaim', { ...report });
        return report;
      })
      .finally(() => {
        running = undefined;
      });
    return running;
  };
  const tick = () => void runReclaim().catch((err) => logger.error('job.reclaim_failed', { error: err }));
  const cancels: (() => void)[] = [];
  const every = config.checkSeconds;
  if (60 % every === 0 || (every % 60 === 0 && 3600 % every === 0)) {
    // Aligned to the clock: every N seconds of the minute, or every N minutes of the hour.
    const spec = every < 60 ? `*/${every} * * * * *` : `0 */${every / 60} * * * *`;
    const job = schedule.scheduleJob(spec, tick);
    cancels.push(() => job.cancel());
  } else {
    const timer = setInterval(tick, every * 1000);
    cancels.push(() => clearInterval(timer));
  }
  const standbyJobs: schedule.Job[] = [];
  for (const [i, entry] of (config.schedule ?? []).entries()) {
    const job = schedule.scheduleJob(entry.cron, () => pool.setStandby(entry.standby));
    if (!job) {
      for (const cancel of cancels) cancel();
      throw new VzsbError('E_CONFIG', `pool.schedule[${i}].cron: expected a cron expression, got ${JSON.stringify(entry.cron)}`);
    }
    standbyJobs.push(job);
    cancels.push(() => job.cancel());
  }
  return {
    runReclaim,
    standbyJobs,
    stop: async () => {
      for (const cancel of cancels) cancel();
      await running?.catch(() => undefined);
    },
  };
}
