import { VzsbError } from '../../common/errors.js';

/**
 * A cap on the lease requests the balancer works on at once, with a bounded queue: past the
 * cap requests wait their turn (within their own deadline), past the queue they get E_BUSY at
 * once. A burst then costs queueing time, never a pile of half-served requests whose timeouts
 * all fire together.
 */
export class Admission {
  private active = 0;
  private readonly queue: { start: () => void; timer: NodeJS.Timeout }[] = [];

  constructor(
    private readonly maxActive: number,
    private readonly maxQueued: number,
  ) {}

  /** Run `fn` once there is room; E_BUSY when the queue is full or `waitMs` passes first. */
  async run<T>(waitMs: number, fn: () => Promise<T>): Promise<T> {
    if (this.active >= this.maxActive) await this.enqueue(waitMs);
    else this.active++;
    try {
      return await fn();
    } finally {
      const next = this.queue.shift();
      if (next) {
        clearTimeout(next.timer);
        next.start();
      } else {
        this.active--;
      }
    }
  }

  /** Requests running and waiting (metrics, tests). */
  load(): { active: number; queued: number } {
    return { active: this.active, queued: this.queue.length };
  }

  private enqueue(waitMs: number): Promise<void> {
    if (this.queue.length >= this.maxQueued) return Promise.reject(busy(`${this.active} lease requests running and ${this.queue.length} waiting`));
    return new Promise<void>((resolve, reject) => {
      const entry = {
        start: resolve,
        timer: setTimeout(() => {
          const i = this.queue.indexOf(entry);
          if (i >= 0) this.queue.splice(i, 1);
          reject(busy(`no room for this lease request within ${Math.round(waitMs)} ms`));
        }, Math.max(1, waitMs)),
      };
      this.queue.push(entry);
    });
  }
}

function busy(why: string): VzsbError {
  return new VzsbError('E_BUSY', `the balancer is busy (${why}); try again in a moment`);
}
