/**
 * The maximum session length, as the student sees it: the hypervisor ends a lease at its
 * deadline (the lease answer says how far off it is); the gateway, which holds the student's
 * terminal, warns on it before, and ends the session itself at the deadline (the hypervisor's
 * reclaim follows within its check interval).
 */
export interface DeadlineOptions {
  secondsLeft: number;
  /** writes a line to the student's terminal */
  write: (text: string) => void;
  /** ends the session */
  end: () => void;
  /** warn this many seconds before the end (each once; one already past is given at once) */
  warnAt?: readonly number[];
  now?: () => number;
}

export const WARN_AT_SECONDS: readonly number[] = [300, 60];

export function deadlineMessage(secondsLeft: number, endsAt: Date): string {
  const left = secondsLeft >= 90 ? `${Math.round(secondsLeft / 60)} minutes` : `${Math.max(0, Math.round(secondsLeft))} seconds`;
  const at = endsAt.toISOString().slice(11, 16);
  return `\r\n[vzsandbox] This session ends in ${left} (${at} UTC): it has reached the maximum session length. Your container is reset then; copy out what you want to keep.\r\n`;
}

export const DEADLINE_REACHED = '\r\n[vzsandbox] The maximum session length is reached: this session ends now, and your container is reset.\r\n';

/** Schedules the warnings and the end; returns the cancel function. */
export function scheduleDeadline(o: DeadlineOptions): () => void {
  const now = o.now ?? Date.now;
  const start = now();
  const endsAt = new Date(start + o.secondsLeft * 1000);
  const timers: NodeJS.Timeout[] = [];
  const marks = [...(o.warnAt ?? WARN_AT_SECONDS)].sort((a, b) => b - a);
  let warnedNow = false;
  for (const mark of marks) {
    if (o.secondsLeft > mark) {
      timers.push(setTimeout(() => o.write(deadlineMessage(mark, endsAt)), (o.secondsLeft - mark) * 1000));
    } else if (!warnedNow && o.secondsLeft > 0) {
      warnedNow = true;
      o.write(deadlineMessage(o.secondsLeft, endsAt));
    }
  }
  timers.push(
    setTimeout(() => {
      o.write(DEADLINE_REACHED);
      o.end();
    }, o.secondsLeft * 1000),
  );
  return () => {
    for (const t of timers) clearTimeout(t);
  };
}
