import type { Logger } from '../../common/log.js';
import { VzsbError } from '../../common/errors.js';
import { systemClock, type Clock } from '../common/clock.js';
import { serve, type Served } from '../common/serve.js';
import { createBalancerApp } from './app.js';
import type { BalancerConfig } from './config.js';
import { Fanout } from './fanout.js';
import { HealthMonitor } from './health.js';
import { HypervisorClient } from './hypervisor-client.js';
import { LeaseRouter } from './lease-router.js';
import { BalancerMetrics } from './metrics.js';

/**
 * The balancer daemon: one health round over the hypervisors (bounded by the health timeout),
 * then listen, with polling in the background. It keeps nothing that another instance would
 * need: several can run behind one DNS name.
 */
export interface RunningBalancer {
  served: Served;
  url: string;
  health: HealthMonitor;
  router: LeaseRouter;
  metrics: BalancerMetrics;
  stop(): Promise<void>;
  stopped: Promise<void>;
}

export interface StartBalancerOptions {
  logger: Logger;
  clock?: Clock;
  signals?: boolean;
  /** Process metrics (off when several daemons share a test process). Default true. */
  processMetrics?: boolean;
}

export async function startBalancer(config: BalancerConfig, options: StartBalancerOptions): Promise<RunningBalancer> {
  const { logger } = options;
  const clock = options.clock ?? systemClock;
  const metrics = new BalancerMetrics({ processMetrics: options.processMetrics ?? true });
  const clients = config.hypervisors.map((h) => new HypervisorClient(h));
  for (const c of clients) metrics.hypervisorUp.set({ hypervisor: c.name }, 0);
  let router: LeaseRouter | undefined;
  const health = new HealthMonitor(clients, {
    ...config.health,
    clock,
    logger,
    onChange: (name, up) => metrics.hypervisorUp.set({ hypervisor: name }, up ? 1 : 0),
    afterRound: () => router?.settleDisplaced(),
  });
  await health.start();
  router = new LeaseRouter({ clients, health, config, logger, metrics });
  const fanout = new Fanout({ clients, health, clock, logger, timeoutMs: config.adminTimeoutMs });
  const app = createBalancerApp({ config, router, fanout, health, clock, logger, metrics });
  let served: Served;
  try {
    served = await serve(app, { listen: config.listen, logger, signals: options.signals ?? true, onStop: () => health.stop() });
  } catch (err) {
    await health.stop();
    throw new VzsbError('E_LISTEN', `cannot listen on ${config.listen.host}:${config.listen.port}: ${(err as Error).message}`, { cause: err });
  }
  logger.info('balancer.started', { hypervisors: health.all().map((h) => ({ name: h.name, up: h.up })) });
  return { served, url: served.url, health, router, metrics, stop: () => served.stop(), stopped: served.stopped };
}
