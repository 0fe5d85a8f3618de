import test from 'ava';
import { rankHypervisors, scoreOf, type PlacementInput } from '../../src/daemons/balancer/placement.js';
import type { Capacity } from '../../src/api/v1/hypervisor.js';

const cap = (c: Partial<Capacity>): Capacity => ({ clean: 0, leased: 0, building: 0, dirty: 0, broken: 0, max: 10, standby: 0, ...c });
const h = (name: string, capacity: Capacity | null, extra: Partial<PlacementInput> = {}): PlacementInput => ({ name, up: true, capacity, inflight: 0, ...extra });

test('most clean containers ready first, then most room to build, then what is being built, then name', (t) => {
  const ranked = rankHypervisors([
    h('a', cap({ clean: 1, leased: 1, max: 10 })), // ready 1, room 8
    h('b', cap({ clean: 3, leased: 7, max: 10 })), // ready 3, room 0
    h('c', cap({ clean: 1, leased: 0, max: 4 })), // ready 1, room 3
    h('d', cap({ clean: 0, leased: 8, building: 1, max: 10 })), // ready 0, room 1
    h('e', cap({ clean: 0, leased: 9, dirty: 1, max: 10 })), // ready 0, room 0, 1 coming
    h('f', cap({ clean: 1, leased: 1, max: 10 })), // same as a: by name
  ]);
  t.deepEqual(ranked.order, ['b', 'a', 'f', 'c', 'd', 'e']);
  t.deepEqual(ranked.excluded, []);
});

test('never a hypervisor that is down, unasked or full', (t) => {
  const ranked = rankHypervisors([
    h('down', cap({ clean: 5 }), { up: false }),
    h('unasked', null),
    h('full', cap({ clean: 0, leased: 10, max: 10 })),
    h('brokenfull', cap({ clean: 0, leased: 6, broken: 4, max: 10 })),
    h('ok', cap({ clean: 0, leased: 9, max: 10 })),
  ]);
  t.deepEqual(ranked.order, ['ok']);
  t.deepEqual(ranked.excluded, [
    { name: 'down', reason: 'down' },
    { name: 'unasked', reason: 'down' },
    { name: 'full', reason: 'full' },
    { name: 'brokenfull', reason: 'full' },
  ]);
});

test('leases in flight count against ready containers first, then room', (t) => {
  t.deepEqual(scoreOf(cap({ clean: 2, leased: 0, max: 4 }), 0), { ready: 2, room: 2, coming: 0 });
  t.deepEqual(scoreOf(cap({ clean: 2, leased: 0, max: 4 }), 1), { ready: 1, room: 2, coming: 0 });
  t.deepEqual(scoreOf(cap({ clean: 2, leased: 0, max: 4 }), 3), { ready: 0, room: 1, coming: 0 });
  t.deepEqual(scoreOf(cap({ clean: 2, leased: 0, max: 4 }), 9), { ready: 0, room: 0, coming: 0 });
  // Two equal hypervisors: one lease in flight on "a" sends the next one to "b".
  const both = (ia: number, ib: number) => rankHypervisors([h('a', cap({ clean: 2, max: 4 }), { inflight: ia }), h('b', cap({ clean: 2, max: 4 }), { inflight: ib })]).order;
  t.deepEqual(both(0, 0), ['a', 'b']);
  t.deepEqual(both(1, 0), ['b', 'a']);
  t.deepEqual(both(1, 1), ['a', 'b']);
  // Everything in flight: still a candidate (the hypervisor decides), but after one with room.
  const busy = rankHypervisors([h('a', cap({ clean: 1, leased: 3, max: 4 }), { inflight: 1 }), h('b', cap({ clean: 0, leased: 3, max: 4 }))]);
  t.deepEqual(busy.order, ['b', 'a']);
  t.deepEqual(busy.excluded, []);
});
