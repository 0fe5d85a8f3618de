import test from 'ava';
import type { LeaseRecord } from '../../src/daemons/hypervisor/lease-records.js';
import type { StoredRecord, StoredState } from '../../src/daemons/hypervisor/lease-store.js';
import { decide, planReconcile, type OrphanPolicy, type ReconcileAction, type ReconcileInput } from '../../src/daemons/hypervisor/reconcile.js';

// What start decides for one container: its record (after a newer lease record was applied)
// x what the driver lists. The table of docs/hypervisor.md ("Crash safety"), row by row.
type Stored = StoredRecord['state'] | 'leased-nobody' | 'none';
type Live = 'running' | 'stopped' | 'none';
const DESTROY: OrphanPolicy = { orphans: 'destroy', damaged: false, ours: true };
const ADOPT: OrphanPolicy = { orphans: 'adopt', damaged: false, ours: true };
const DAMAGED: OrphanPolicy = { orphans: 'destroy', damaged: true, ours: true };
const FOREIGN: OrphanPolicy = { orphans: 'adopt', damaged: true, ours: false };

const DECISIONS: [Stored, Live, OrphanPolicy, ReconcileAction][] = [
  ['leased', 'running', DESTROY, 'keep-lease'],
  ['leased', 'stopped', DESTROY, 'start'],
  ['leased', 'none', DESTROY, 'drop'],
  ['leased-nobody', 'running', DESTROY, 'rebuild'],
  ['leased-nobody', 'stopped', DESTROY, 'rebuild'],
  ['leased-nobody', 'none', DESTROY, 'drop'],
  ['clean', 'running', DESTROY, 'keep'],
  ['clean', 'stopped', DESTROY, 'rebuild'],
  ['clean', 'none', DESTROY, 'drop'],
  ['building', 'running', DESTROY, 'rebuild'],
  ['building', 'stopped', DESTROY, 'rebuild'],
  ['building', 'none', DESTROY, 'drop'],
  ['dirty', 'running', DESTROY, 'rebuild'],
  ['dirty', 'stopped', DESTROY, 'rebuild'],
  ['dirty', 'none', DESTROY, 'drop'],
  ['broken', 'running', DESTROY, 'rebuild'],
  ['broken', 'stopped', DESTROY, 'rebuild'],
  ['broken', 'none', ADOPT, 'drop'],
  // A record decides whatever the orphan policy says.
  ['clean', 'running', ADOPT, 'keep'],
  ['leased', 'stopped', DAMAGED, 'start'],
  // Orphans: no record at all.
  ['none', 'running', DESTROY, 'destroy'],
  ['none', 'stopped', DESTROY, 'destroy'],
  ['none', 'running', ADOPT, 'adopt'],
  ['none', 'stopped', ADOPT, 'adopt'],
  ['none', 'running', DAMAGED, 'adopt'],
  ['none', 'running', FOREIGN, 'destroy'],
];

function stored(s: Stored): StoredRecord | undefined {
  if (s === 'none') return undefined;
  if (s === 'leased') return { id: 'vzsb-0001', state: 'leased', since: 1, user: 'alice' };
  if (s === 'leased-nobody') return { id: 'vzsb-0001', state: 'leased', since: 1 };
  return { id: 'vzsb-0001', state: s, since: 1 };
}

function policyName(p: OrphanPolicy): string {
  return p === DESTROY ? 'orphans: destroy' : p === ADOPT ? 'orphans: adopt' : p === DAMAGED ? 'damaged state' : 'not ours';
}

for (const [s, l, policy, action] of DECISIONS) {
  test(`decide: record ${s}, container ${l}, ${policyName(policy)} -> ${action}`, (t) => {
    t.is(decide(stored(s), l === 'none' ? undefined : { running: l === 'running' }, policy), action);
  });
}

test('the decision table covers every stored state x every driver view', (t) => {
  const kinds: Stored[] = ['leased', 'leased-nobody', 'clean', 'building', 'dirty', 'broken', 'none'];
  for (const k of kinds) {
    for (const l of ['running', 'stopped', 'none'] as Live[]) {
      if (k === 'none' && l === 'none') continue;
      t.true(DECISIONS.some(([s, v]) => s === k && v === l), `${k} x ${l}`);
    }
  }
});

test('decide refuses a case with neither a record nor a container', (t) => {
  t.throws(() => decide(undefined, undefined, DESTROY));
});

// The whole plan: state file x driver's list x the containers' own lease records.
const NOW = 1_000_000;
const SAVED_AT = 900_000;

function input(over: Partial<ReconcileInput> & { containers?: StoredRecord[]; records?: LeaseRecord[] }): ReconcileInput {
  const { containers, records, ...rest } = over;
  const saved: StoredState | undefined = containers && { version: 1, savedAt: SAVED_AT, containers };
  return {
    saved,
    damaged: false,
    live: [],
    leaseRecords: new Map((records ?? []).map((r) => [r.container, r])),
    now: NOW,
    orphans: 'destroy',
    claimSeconds: 100,
    ours: (id) => /^vzsb-\d+$/.test(id),
    ...rest,
  };
}

const leasedRec = (id: string, user: string, at: number): LeaseRecord => ({ version: 1, container: id, state: 'leased', user, grantedAt: at - 5, at });
const releasedRec = (id: string, user: string, at: number): LeaseRecord => ({ version: 1, container: id, state: 'released', user, at });
const up = (id: string, running = true) => ({ id, running, address: `198.18.0.${Number(id.slice(-1))}` as string | undefined });

interface PlanCase {
  name: string;
  input: ReconcileInput;
  entries: [id: string, action: string, state: string, user?: string][];
  destroy?: string[];
  dropped?: string[];
  fromRecords?: string[];
}

const PLANS: PlanCase[] = [
  {
    name: 'the state file alone: kept, kept lease, started, rebuilt, dropped, orphan destroyed',
    input: input({
      containers: [
        { id: 'vzsb-0001', state: 'clean', since: 1 },
        { id: 'vzsb-0002', state: 'leased', since: 1, user: 'alice', grantedAt: 1 },
        { id: 'vzsb-0003', state: 'leased', since: 1, user: 'bob', grantedAt: 1 },
        { id: 'vzsb-0004', state: 'building', since: 1 },
        { id: 'vzsb-0005', state: 'leased', since: 1, user: 'carol' },
      ],
      live: [up('vzsb-0001'), up('vzsb-0002'), up('vzsb-0003', false), up('vzsb-0004'), up('vzsb-0009')],
    }),
    entries: [
      ['vzsb-0001', 'keep', 'clean'],
      ['vzsb-0002', 'keep-lease', 'leased', 'alice'],
      ['vzsb-0003', 'start', 'leased', 'bob'],
      ['vzsb-0004', 'rebuild', 'dirty'],
    ],
    dropped: ['vzsb-0005'],
    destroy: ['vzsb-0009'],
  },
  {
    name: 'a lease record newer than the state file wins: a release kept only in memory, a lease the file never saw',
    input: input({
      containers: [
        { id: 'vzsb-0001', state: 'leased', since: 1, user: 'alice' },
        { id: 'vzsb-0002', state: 'clean', since: 1 },
      ],
      live: [up('vzsb-0001'), up('vzsb-0002')],
      records: [releasedRec('vzsb-0001', 'alice', SAVED_AT + 1), leasedRec('vzsb-0002', 'bob', SAVED_AT + 2)],
    }),
    entries: [
      ['vzsb-0001', 'rebuild', 'dirty'],
      ['vzsb-0002', 'keep-lease', 'leased', 'bob'],
    ],
    fromRecords: ['vzsb-0001', 'vzsb-0002'],
  },
  {
    name: 'a lease record older than the state file, or of a container not listed, is ignored',
    input: input({
      containers: [
        { id: 'vzsb-0001', state: 'clean', since: 1 },
        { id: 'vzsb-0002', state: 'leased', since: 1, user: 'alice' },
      ],
      live: [up('vzsb-0001')],
      records: [leasedRec('vzsb-0001', 'bob', SAVED_AT - 1), leasedRec('vzsb-0002', 'alice', SAVED_AT + 1)],
    }),
    entries: [['vzsb-0001', 'keep', 'clean']],
    dropped: ['vzsb-0002'],
  },
  {
    name: 'no state file: the lease records decide, the rest are orphans',
    input: input({
      live: [up('vzsb-0001'), up('vzsb-0002', false), up('vzsb-0003'), up('vzsb-0004')],
      records: [leasedRec('vzsb-0001', 'alice', 5), leasedRec('vzsb-0002', 'bob', 6), releasedRec('vzsb-0003', 'carol', 7)],
    }),
    entries: [
      ['vzsb-0001', 'keep-lease', 'leased', 'alice'],
      ['vzsb-0002', 'start', 'leased', 'bob'],
      ['vzsb-0003', 'rebuild', 'dirty'],
    ],
    destroy: ['vzsb-0004'],
    fromRecords: ['vzsb-0001', 'vzsb-0002', 'vzsb-0003'],
  },
  {
    name: 'a damaged state file: containers nobody vouches for are reset into the pool, foreign ones destroyed',
    input: input({
      damaged: true,
      containers: [{ id: 'vzsb-0001', state: 'clean', since: 1 }],
      live: [up('vzsb-0001'), up('vzsb-0002'), up('vzsb-tmp')],
    }),
    entries: [
      ['vzsb-0001', 'keep', 'clean'],
      ['vzsb-0002', 'adopt', 'dirty'],
    ],
    destroy: ['vzsb-tmp'],
  },
  {
    name: 'orphans: adopt',
    input: input({ orphans: 'adopt', containers: [], live: [up('vzsb-0003'), up('vzsb-0001', false)] }),
    entries: [
      ['vzsb-0003', 'adopt', 'dirty'],
      ['vzsb-0001', 'adopt', 'dirty'],
    ],
  },
];

for (const c of PLANS) {
  test(`plan: ${c.name}`, (t) => {
    const plan = planReconcile(c.input);
    t.deepEqual(
      plan.entries.map((e) => [e.record.id, e.action, e.record.state, ...(e.record.user === undefined ? [] : [e.record.user])]),
      c.entries,
    );
    t.deepEqual(plan.destroy, c.destroy ?? []);
    t.deepEqual(plan.dropped.map((r) => r.id), c.dropped ?? []);
    t.deepEqual(plan.fromRecords.map((f) => f.id), c.fromRecords ?? []);
    for (const e of plan.entries) {
      // The driver's address wins; a reset restarts the record's clock.
      t.is(e.record.address, c.input.live.find((l) => l.id === e.record.id)!.address, e.record.id);
      if (e.action === 'rebuild' || e.action === 'adopt') t.is(e.record.since, NOW);
    }
  });
}

test('plan: records from lease records carry their times and last user; the input is not changed', (t) => {
  const containers: StoredRecord[] = [{ id: 'vzsb-0001', state: 'leased', since: 1, user: 'alice', address: '10.0.0.1' }];
  const before = structuredClone(containers);
  const plan = planReconcile(
    input({
      containers,
      live: [{ id: 'vzsb-0001', running: true, address: undefined }, up('vzsb-0002')],
      records: [releasedRec('vzsb-0001', 'alice', SAVED_AT + 1), leasedRec('vzsb-0002', 'bob', SAVED_AT + 9)],
    }),
  );
  t.deepEqual(containers, before);
  t.like(plan.entries[0]!.record, { id: 'vzsb-0001', state: 'dirty', since: NOW, lastUser: 'alice', address: '10.0.0.1' });
  t.is(plan.entries[0]!.record.user, undefined);
  t.like(plan.entries[1]!.record, { id: 'vzsb-0002', state: 'leased', since: SAVED_AT + 9, user: 'bob', grantedAt: SAVED_AT + 4, lastActiveAt: SAVED_AT + 9, loggedIn: false });
  t.deepEqual(plan.fromRecords.map((f) => [f.id, f.record.state, f.stateFile]), [
    ['vzsb-0001', 'released', 'leased'],
    ['vzsb-0002', 'leased', 'dirty'],
  ]);
});

test('plan: only fresh claims are kept', (t) => {
  const plan = planReconcile({
    ...input({ containers: [] }),
    saved: {
      version: 1,
      savedAt: SAVED_AT,
      containers: [],
      claims: [
        { user: 'alice', hypervisor: 'hv2', since: NOW - 99_999 },
        { user: 'bob', hypervisor: 'hv3', since: NOW - 100_000 },
      ],
    },
  });
  t.deepEqual(plan.claims, [{ user: 'alice', hypervisor: 'hv2', since: NOW - 99_999 }]);
});
