import type { Capacity } from '../../api/v1/hypervisor.js';

/**
 * Where a new lease should go, from what the hypervisors just reported. Pure: no I/O.
 *
 * Order: most clean containers ready, then most room to build (max - total), then the most
 * containers about to be ready (building or being reset), then name (stable). Leases this
 * balancer has in flight to a hypervisor count against its clean containers first, then its
 * room, so concurrent requests spread instead of all racing for the same last container.
 * Never a hypervisor that is down, or full by its own report: nothing ready, no room, nothing
 * coming.
 */
export interface PlacementInput {
  name: string;
  up: boolean;
  /** From this request's lookup; null when it did not answer. */
  capacity: Capacity | null;
  /** Lease attempts this balancer has running on it. */
  inflight: number;
}

export interface Excluded {
  name: string;
  reason: 'down' | 'full';
}

export interface Placement {
  /** Names in the order to try them. */
  order: string[];
  excluded: Excluded[];
}

export interface Score {
  ready: number;
  room: number;
  coming: number;
}

export function scoreOf(capacity: Capacity, inflight: number): Score {
  const total = capacity.clean + capacity.leased + capacity.building + capacity.dirty + capacity.broken;
  const ready = capacity.clean - inflight;
  const room = capacity.max - total - Math.max(0, -ready);
  return { ready: Math.max(0, ready), room: Math.max(0, room), coming: capacity.building + capacity.dirty };
}

export function isFull(score: Score): boolean {
  return score.ready === 0 && score.room === 0 && score.coming === 0;
}

export function rankHypervisors(inputs: readonly PlacementInput[]): Placement {
  const excluded: Excluded[] = [];
  const scored: { name: string; score: Score }[] = [];
  for (const h of inputs) {
    if (!h.up || !h.capacity) {
      excluded.push({ name: h.name, reason: 'down' });
      continue;
    }
    // Full only by the hypervisor's own numbers: in-flight leases are a guess (the hypervisor
    // may have granted them already), good for spreading, never a reason to refuse.
    if (isFull(scoreOf(h.capacity, 0))) excluded.push({ name: h.name, reason: 'full' });
    else scored.push({ name: h.name, score: scoreOf(h.capacity, h.inflight) });
  }
  scored.sort((a, b) => b.score.ready - a.score.ready || b.score.room - a.score.room || b.score.coming - a.score.coming || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return { order: scored.map((s) => s.name), excluded };
}
