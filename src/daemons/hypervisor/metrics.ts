import { Counter, Gauge, Histogram } from 'prom-client';
import { createDaemonMetrics, type DaemonMetrics } from '../common/metrics.js';
import { containerStates } from './lease-store.js';
import type { Capacity, ReclaimReason } from '../../api/v1/hypervisor.js';
import type { PoolObserver } from './pool.js';

/** The hypervisor's metrics; it is the pool's observer. Names start with `vzsb_hypervisor_`. */
export class HypervisorMetrics implements PoolObserver {
  readonly daemon: DaemonMetrics;
  private capacity: (() => Capacity) | undefined;
  private readonly leaseSeconds: Histogram<'hit'>;
  private readonly hits: Counter;
  private readonly misses: Counter;
  private readonly refusals: Counter<'code'>;
  private readonly reclaims: Counter<'reason'>;
  private readonly resets: Counter<'outcome'>;
  private readonly resetSeconds: Histogram;

  constructor(options: { processMetrics?: boolean } = {}) {
    this.daemon = createDaemonMetrics('vzsb_hypervisor', options);
    const registers = [this.daemon.registry];
    const p = this.daemon.prefix;
    const self = this;
    new Gauge({
      name: `${p}_containers`,
      help: 'Containers per state',
      labelNames: ['state'],
      registers,
      collect() {
        const c = self.capacity?.();
        for (const state of containerStates) this.set({ state }, c ? c[state] : 0);
      },
    });
    new Gauge({
      name: `${p}_pool_max`,
      help: 'Most containers this hypervisor keeps',
      registers,
      collect() {
        this.set(self.capacity?.().max ?? 0);
      },
    });
    new Gauge({
      name: `${p}_pool_standby`,
      help: 'Clean containers the pool keeps ready (current target)',
      registers,
      collect() {
        this.set(self.capacity?.().standby ?? 0);
      },
    });
    this.leaseSeconds = new Histogram({
      name: `${p}_lease_duration_seconds`,
      help: 'Time to grant a lease, by whether a ready container was used',
      labelNames: ['hit'],
      buckets: [0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
    this.hits = new Counter({ name: `${p}_pool_hits_total`, help: 'Leases served from a ready clean container', registers });
    this.misses = new Counter({ name: `${p}_pool_misses_total`, help: 'Leases that had to wait for a container to be built or reset', registers });
    this.refusals = new Counter({ name: `${p}_lease_refusals_total`, help: 'Leases refused, by error code', labelNames: ['code'], registers });
    this.reclaims = new Counter({ name: `${p}_reclaims_total`, help: 'Leases ended by the pool, by reason', labelNames: ['reason'], registers });
    this.resets = new Counter({ name: `${p}_resets_total`, help: 'Container builds and resets, by outcome', labelNames: ['outcome'], registers });
    this.resetSeconds = new Histogram({
      name: `${p}_reset_duration_seconds`,
      help: 'Time to build or reset a container (destroy, clone, start until sshd answers)',
      buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
      registers,
    });
  }

  /** Where the containers gauge reads from (the pool, once it exists). */
  watch(capacity: () => Capacity): void {
    this.capacity = capacity;
  }

  leaseGranted(hit: boolean, seconds: number, renewed: boolean): void {
    this.leaseSeconds.observe({ hit: String(hit) }, seconds);
    if (!renewed) (hit ? this.hits : this.misses).inc();
  }

  leaseRefused(code: string): void {
    this.refusals.inc({ code });
  }

  reclaimed(reason: ReclaimReason): void {
    this.reclaims.inc({ reason });
  }

  resetDone(ok: boolean, seconds: number): void {
    this.resets.inc({ outcome: ok ? 'ok' : 'failed' });
    if (ok) this.resetSeconds.observe(seconds);
  }
}
