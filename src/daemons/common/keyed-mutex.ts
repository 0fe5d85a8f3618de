/**
 * One queue per key: `run(key, fn)` starts `fn` only after every earlier `run` for the same key
 * has settled. Keys are independent. Entries are dropped when their queue drains.
 */
export class KeyedMutex {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, fn: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const result = prev.then(fn, fn);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }

  /** True while some operation for `key` is queued or running. */
  busy(key: string): boolean {
    return this.tails.has(key);
  }
}
