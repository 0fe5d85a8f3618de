import { Counter, Gauge, Histogram } from 'prom-client';
import { createDaemonMetrics, type DaemonMetrics } from '../common/metrics.js';

/** The balancer's metrics. Names start with `vzsb_balancer_`; user names never become labels. */
export class BalancerMetrics {
  readonly daemon: DaemonMetrics;
  readonly leaseSeconds: Histogram<'outcome'>;
  readonly leases: Counter<'hypervisor' | 'renewed'>;
  readonly failovers: Counter<'hypervisor' | 'code'>;
  readonly refusals: Counter<'code'>;
  readonly hypervisorUp: Gauge<'hypervisor'>;

  constructor(options: { processMetrics?: boolean } = {}) {
    this.daemon = createDaemonMetrics('vzsb_balancer', options);
    const registers = [this.daemon.registry];
    const p = this.daemon.prefix;
    this.leaseSeconds = new Histogram({
      name: `${p}_lease_duration_seconds`,
      help: 'Time to answer a lease request, lookup and failovers included, by outcome',
      labelNames: ['outcome'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
    this.leases = new Counter({ name: `${p}_leases_total`, help: 'Leases granted, by hypervisor and whether the user already held it', labelNames: ['hypervisor', 'renewed'], registers });
    this.failovers = new Counter({ name: `${p}_failovers_total`, help: 'Lease attempts that failed on a hypervisor and moved on, by hypervisor and error code', labelNames: ['hypervisor', 'code'], registers });
    this.refusals = new Counter({ name: `${p}_lease_refusals_total`, help: 'Lease requests no hypervisor could serve, by error code', labelNames: ['code'], registers });
    this.hypervisorUp = new Gauge({ name: `${p}_hypervisor_up`, help: '1 when the hypervisor answered its last health poll', labelNames: ['hypervisor'], registers });
  }
}
