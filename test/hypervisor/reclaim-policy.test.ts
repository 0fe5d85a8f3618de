import test from 'ava';
import type { ReclaimReason } from '../../src/api/v1/hypervisor.js';
import type { SessionRecord } from '../../src/daemons/hypervisor/container-table.js';
import { claimExpired, expiry, keptPastGrace, reclaimReason, staleSessions, type LeaseTimes, type ReclaimPolicy } from '../../src/daemons/hypervisor/reclaim-policy.js';

const S = 1000;
const POLICY: ReclaimPolicy = { maxSessionSeconds: 3600, graceSeconds: 60, idleSeconds: 600, loginSeconds: 300 };
const GRANTED = 1_000_000;

// [name, lease, live ssh sessions, seconds since the grant, policy, reason]
const REASONS: [string, LeaseTimes, number, number, ReclaimPolicy, ReclaimReason | undefined][] = [
  ['fresh, nobody logged in yet', { grantedAt: GRANTED, loggedIn: false }, 0, 299, POLICY, undefined],
  ['nobody logged in within loginSeconds', { grantedAt: GRANTED, loggedIn: false }, 0, 300, POLICY, 'never-used'],
  ['without loginSeconds, idleSeconds is the login limit', { grantedAt: GRANTED, loggedIn: false }, 0, 300, { ...POLICY, loginSeconds: undefined }, undefined],
  ['without loginSeconds, past idleSeconds', { grantedAt: GRANTED, loggedIn: false }, 0, 600, { ...POLICY, loginSeconds: undefined }, 'never-used'],
  ['a session open keeps a never-used lease', { grantedAt: GRANTED, loggedIn: false }, 1, 3000, POLICY, undefined],
  ['logged in, active just under idleSeconds ago', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED + 1000 * S }, 0, 1599, POLICY, undefined],
  ['logged in, idle for idleSeconds', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED + 1000 * S }, 0, 1600, POLICY, 'idle'],
  ['logged in, no activity seen: idle counts from the grant', { grantedAt: GRANTED, loggedIn: true }, 0, 600, POLICY, 'idle'],
  ['idle but a session is open', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED }, 2, 1600, POLICY, undefined],
  ['released, within grace', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED, releasedAt: GRANTED + 10 * S }, 0, 69, POLICY, undefined],
  ['released, grace over', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED, releasedAt: GRANTED + 10 * S }, 0, 70, POLICY, 'released'],
  ['released, grace over, but a session is open', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED, releasedAt: GRANTED + 10 * S }, 1, 70, POLICY, undefined],
  ['released and idle: released is the reason', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED, releasedAt: GRANTED }, 0, 3000, POLICY, 'released'],
  ['the maximum session length, with sessions open', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED + 3599 * S }, 3, 3600, POLICY, 'session-limit'],
  ['just under the maximum session length', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED + 3599 * S }, 3, 3599, POLICY, undefined],
  ['no maximum session length', { grantedAt: GRANTED, loggedIn: true, lastActiveAt: GRANTED + 99_999 * S }, 1, 100_000, { ...POLICY, maxSessionSeconds: 'none' }, undefined],
  ['the maximum comes before released', { grantedAt: GRANTED, releasedAt: GRANTED }, 0, 3600, POLICY, 'session-limit'],
  ['no grant time: counts from now', { loggedIn: false }, 0, 100_000, POLICY, undefined],
];

for (const [name, lease, sessions, after, policy, reason] of REASONS) {
  test(`reclaimReason: ${name} -> ${reason ?? 'kept'}`, (t) => {
    t.is(reclaimReason(lease, sessions, GRANTED + after * S, policy), reason);
  });
}

// [lease, reason, sessions, seconds since the grant, kept past its grace]
const GRACE: [string, LeaseTimes, ReclaimReason | undefined, number, number, boolean][] = [
  ['released, grace over, a session open', { grantedAt: GRANTED, releasedAt: GRANTED }, undefined, 1, 60, true],
  ['released, within grace, a session open', { grantedAt: GRANTED, releasedAt: GRANTED }, undefined, 1, 59, false],
  ['released, grace over, no session (it ends instead)', { grantedAt: GRANTED, releasedAt: GRANTED }, 'released', 0, 60, false],
  ['not released', { grantedAt: GRANTED }, undefined, 1, 600, false],
  ['released but ending for another reason', { grantedAt: GRANTED, releasedAt: GRANTED }, 'session-limit', 1, 3600, false],
];

for (const [name, lease, reason, sessions, after, kept] of GRACE) {
  test(`keptPastGrace: ${name} -> ${kept}`, (t) => {
    t.is(keptPastGrace(lease, reason, sessions, GRANTED + after * S, POLICY), kept);
  });
}

const session = (id: string, ageSeconds: number): SessionRecord => ({ id, key: `key-${id}`, since: GRANTED - ageSeconds * S });

// [registered sessions, live ssh sessions, the ones dropped]
const STALE: [string, SessionRecord[], number, string[]][] = [
  ['as many live as registered', [session('a', 500), session('b', 400)], 2, []],
  ['more live than registered', [session('a', 500)], 3, []],
  ['one too many, the oldest goes', [session('a', 500), session('b', 400)], 1, ['a']],
  ['none live, all old enough go', [session('a', 500), session('b', 400)], 0, ['a', 'b']],
  ['young sessions may not have connected yet', [session('a', 119), session('b', 10)], 0, []],
  ['only those old enough, oldest first, at most the surplus', [session('a', 500), session('b', 300), session('c', 100), session('d', 5)], 2, ['a', 'b']],
  ['the surplus among young ones is left', [session('a', 500), session('b', 100), session('c', 50)], 1, ['a']],
];

for (const [name, registered, live, dropped] of STALE) {
  test(`staleSessions: ${name}`, (t) => {
    t.deepEqual(
      staleSessions(registered, live, GRANTED).map((s) => s.id),
      dropped,
    );
  });
}

test('claimExpired: a claim holds for claimSeconds', (t) => {
  t.false(claimExpired(GRANTED, GRANTED + 59_999, 60));
  t.true(claimExpired(GRANTED, GRANTED + 60_000, 60));
});

test('expiry: the end of the maximum session length, and the seconds left (never negative)', (t) => {
  t.deepEqual(expiry(GRANTED, GRANTED, 'none'), { expiresAt: null, secondsLeft: null });
  t.deepEqual(expiry(GRANTED, GRANTED + 600 * S, 3600), { expiresAt: new Date(GRANTED + 3600 * S).toISOString(), secondsLeft: 3000 });
  t.deepEqual(expiry(GRANTED, GRANTED + 1400, 1), { expiresAt: new Date(GRANTED + S).toISOString(), secondsLeft: 0 });
});
