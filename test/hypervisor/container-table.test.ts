import test from 'ava';
import { ContainerTable, isAllowedTransition, TRANSITIONS, type ContainerRecord, type Place } from '../../src/daemons/hypervisor/container-table.js';
import type { ContainerState } from '../../src/daemons/hypervisor/lease-store.js';

const STATES: ContainerState[] = ['building', 'clean', 'leased', 'dirty', 'broken'];
const PLACES: Place[] = ['absent', ...STATES];

// Written out here on purpose (not derived from TRANSITIONS): the pool's life cycle as
// docs/hypervisor.md describes it. Every other pair is refused.
const ALLOWED: [Place, Place][] = [
  ['absent', 'building'], // reserve a number
  ['absent', 'clean'], // start: kept clean
  ['absent', 'leased'], // start: lease kept
  ['absent', 'dirty'], // start: rebuild, or orphan adopted
  ['building', 'building'], // the reserved build gets its slot
  ['building', 'clean'], // built
  ['building', 'broken'], // build failed
  ['clean', 'leased'], // taken for a lease
  ['clean', 'dirty'], // admin reset
  ['leased', 'clean'], // lease never answered
  ['leased', 'dirty'], // lease ended
  ['dirty', 'building'], // reset starts
  ['dirty', 'dirty'], // admin reset again
  ['broken', 'dirty'], // admin reset
  ['broken', 'absent'], // destroyed
];
const allowed = new Set(ALLOWED.map(([f, t]) => `${f}>${t}`));

const cases = PLACES.flatMap((from) => PLACES.map((to) => ({ from, to, ok: allowed.has(`${from}>${to}`) })));

test('the transition table allows exactly the life cycle, each with its reason', (t) => {
  t.is(cases.length, 36);
  for (const c of cases) t.is(isAllowedTransition(c.from, c.to), c.ok, `${c.from} -> ${c.to}`);
  t.is(TRANSITIONS.length, ALLOWED.length);
  for (const tr of TRANSITIONS) t.true(tr.why.length > 10, `${tr.from} -> ${tr.to} says why`);
  // No state is a dead end, and every state can be entered.
  for (const s of STATES) {
    t.true(ALLOWED.some(([f]) => f === s), `${s} can be left`);
    t.true(ALLOWED.some(([, to]) => to === s), `${s} can be entered`);
  }
});

/** A table holding one record `vzsb-0001` in `state`, reached through allowed changes only. */
function tableWith(state: ContainerState): { table: ContainerTable; rec: ContainerRecord; entered: Place[] } {
  const entered: Place[] = [];
  const table = new ContainerTable('vzsb-', 10, (_r, to) => entered.push(to));
  const rec = table.reserve(1)!;
  if (state === 'clean' || state === 'leased') table.move(rec, 'clean', 2);
  if (state === 'leased') table.assign(rec, 'alice', 3);
  if (state === 'dirty') {
    table.move(rec, 'broken', 2);
    table.move(rec, 'dirty', 3);
  }
  if (state === 'broken') table.move(rec, 'broken', 2);
  if (rec.state !== state) throw new Error(`setup reached ${rec.state}, not ${state}`);
  entered.length = 0;
  return { table, rec, entered };
}

for (const c of cases) {
  test(`the table ${c.ok ? 'makes' : 'refuses'} ${c.from} -> ${c.to}`, (t) => {
    if (c.from === 'absent') {
      const entered: Place[] = [];
      const table = new ContainerTable('vzsb-', 10, (_r, to) => entered.push(to));
      const rec: ContainerRecord = c.to === 'absent' ? { id: 'vzsb-0001', state: 'clean', since: 1 } : { id: 'vzsb-0001', state: c.to, since: 1, user: 'alice' };
      if (c.to === 'absent') {
        // Taking out what is not there changes nothing (and is no transition).
        t.false(table.remove(rec));
        t.deepEqual(entered, []);
        return;
      }
      if (c.ok) {
        table.insert(rec);
        t.is(table.get(rec.id), rec);
        t.deepEqual(entered, [c.to]);
      } else {
        t.throws(() => table.insert(rec), { message: `container vzsb-0001: no transition absent -> ${c.to}` });
        t.is(table.get(rec.id), undefined);
        t.deepEqual(entered, []);
      }
      return;
    }
    const { table, rec, entered } = tableWith(c.from);
    const before = { ...rec };
    const change = () => (c.to === 'absent' ? table.remove(rec) : table.move(rec, c.to, 100));
    if (c.ok) {
      change();
      t.deepEqual(entered, [c.to]);
      if (c.to === 'absent') t.is(table.get(rec.id), undefined);
      else t.like(rec, { state: c.to, since: 100 });
    } else {
      t.throws(change, { message: `container vzsb-0001: no transition ${c.from} -> ${c.to}` });
      t.deepEqual(rec, before, 'a refused change leaves the record as it was');
      t.is(table.get(rec.id), rec);
      t.deepEqual(entered, []);
    }
  });
}

test('a record that is not the table\'s own is never moved, and a second record under one id is refused', (t) => {
  const table = new ContainerTable('vzsb-', 10);
  const rec = table.reserve(1)!;
  const copy: ContainerRecord = { ...rec };
  t.throws(() => table.move(copy, 'clean', 2), { message: /not this record/ });
  t.false(table.remove(copy));
  t.throws(() => table.insert(copy), { message: /already in the table/ });
  t.is(table.get(rec.id), rec);
});

test('reserve takes the lowest free number, for a user when asked, and stops at max', (t) => {
  const table = new ContainerTable('vzsb-', 3);
  const a = table.reserve(1)!;
  const b = table.reserve(1, 'bob')!;
  const c = table.reserve(1)!;
  t.deepEqual([a.id, b.id, c.id], ['vzsb-0001', 'vzsb-0002', 'vzsb-0003']);
  t.is(table.reserve(1), undefined, 'at max');
  t.is(b.reservedFor, 'bob');
  t.is(table.reservationOf('bob'), b);
  t.is(table.unreserved(), 2, "bob's build does not count toward standby");
  table.move(a, 'broken', 2);
  table.remove(a);
  t.is(table.reserve(3)!.id, 'vzsb-0001', 'a freed number is taken again');
  t.is(table.numberOf('vzsb-0042'), 42);
  t.is(table.numberOf('vzsb-x1'), undefined);
  t.is(table.numberOf('other-0001'), undefined);
});

test('takeClean gives the lowest clean container, never one reserved for someone else, and indexes the lease', (t) => {
  const table = new ContainerTable('vzsb-', 10);
  const recs = [table.reserve(1)!, table.reserve(1, 'bob')!, table.reserve(1)!];
  for (const r of recs) table.move(r, 'clean', 2);
  table.move(recs[0]!, 'dirty', 3);
  t.is(table.takeClean('alice', 4), recs[2], "bob's is skipped");
  t.like(recs[2], { state: 'leased', user: 'alice', since: 4 });
  t.is(table.leaseOf('alice'), recs[2]);
  t.true(table.holds(recs[2]!, 'alice'));
  t.is(table.takeClean('bob', 5), recs[1]);
  t.is(recs[1]!.reservedFor, undefined);
  t.is(table.reservationOf('bob'), undefined);
  t.is(table.takeClean('carol', 6), undefined);
  t.deepEqual(table.counts(), { clean: 0, leased: 2, building: 0, dirty: 1, broken: 0 });
  t.true(table.cleanSoon(), 'a dirty container turns clean without a new build');
});

test('endLease keeps the last user and clears the lease and its index entry; unassign puts it back clean', (t) => {
  const { table, rec } = tableWith('leased');
  Object.assign(rec, { grantedAt: 3, lastActiveAt: 4, loggedIn: true, releasedAt: 5, displaced: 'hv2', sessions: [{ id: 's', key: 'k', since: 3 }] });
  table.endLease(rec, 10);
  t.like(rec, { id: 'vzsb-0001', state: 'dirty', since: 10, lastUser: 'alice' });
  for (const field of ['user', 'sessions', 'displaced', 'grantedAt', 'lastActiveAt', 'loggedIn', 'releasedAt'] as const) t.is(rec[field], undefined, field);
  t.is(table.leaseOf('alice'), undefined);

  const other = tableWith('leased');
  other.rec.grantedAt = 3;
  other.table.unassign(other.rec, 7);
  t.like(other.rec, { state: 'clean', since: 7, user: undefined, grantedAt: undefined });
  t.is(other.table.leaseOf('alice'), undefined);
  t.is(other.table.takeClean('bob', 8), other.rec, 'it is in the pool again');
});
