import test from 'ava';
import { DEADLINE_REACHED, deadlineMessage, scheduleDeadline } from '../../src/shell/session-deadline.js';

function run(secondsLeft: number, warnAt: number[]): Promise<string[]> {
  return new Promise((resolve) => {
    const lines: string[] = [];
    scheduleDeadline({ secondsLeft, warnAt, write: (s) => lines.push(s), end: () => resolve(lines) });
  });
}

test('warnings before the maximum session length, then the end', async (t) => {
  const lines = await run(0.3, [0.2, 0.1]);
  t.is(lines.length, 3);
  t.regex(lines[0]!, /ends in 0 seconds .*maximum session length/);
  t.is(lines[2], DEADLINE_REACHED);
});

test('a session that starts inside the warning time is warned at once, once', async (t) => {
  const lines = await run(0.2, [300, 60]);
  t.is(lines.length, 2);
  t.regex(lines[0]!, /This session ends in 0 seconds/);
  t.is(lines[1], DEADLINE_REACHED);
});

test('cancelled: nothing is written and the end never comes', async (t) => {
  const lines: string[] = [];
  let ended = false;
  const cancel = scheduleDeadline({ secondsLeft: 0.05, warnAt: [0.04], write: (s) => lines.push(s), end: () => (ended = true) });
  cancel();
  await new Promise((r) => setTimeout(r, 100));
  t.deepEqual(lines, []);
  t.false(ended);
});

test('the warning names minutes, seconds and the UTC time', (t) => {
  t.regex(deadlineMessage(300, new Date('2026-12-01T14:05:00Z')), /ends in 5 minutes \(14:05 UTC\)/);
  t.regex(deadlineMessage(45, new Date('2026-12-01T14:05:00Z')), /ends in 45 seconds/);
});
