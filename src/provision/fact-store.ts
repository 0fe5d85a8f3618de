import { factKey, type FactRef, type HostFacts, type OsFacts } from './types.js';

/**
 * Facts of one host as planning sees them: first as gathered, then updated with every planned
 * operation's effects, so that later tasks and check mode see the predicted state.
 */
export class FactStore implements HostFacts {
  readonly #values = new Map<string, unknown>();
  constructor(readonly os: OsFacts) {}

  set(ref: FactRef, value: unknown): void {
    this.#values.set(factKey(ref), value);
  }

  has(ref: FactRef): boolean {
    return this.#values.has(factKey(ref));
  }

  get<T>(ref: FactRef): T {
    const key = factKey(ref);
    if (!this.#values.has(key)) {
      // A programming error in an operation: its facts() did not name what plan() reads.
      throw new Error(`fact ${key} was not gathered (the operation must list it in facts())`);
    }
    return this.#values.get(key) as T;
  }
}

export const DEFAULT_OS: OsFacts = {
  id: 'debian',
  versionId: '12',
  family: 'debian',
  packageManager: 'apt',
  initSystem: 'systemd',
  arch: 'x86_64',
  user: 'root',
  hostname: 'host',
};
