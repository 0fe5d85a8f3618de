import { VzsbError, describe } from '../../common/errors.js';
import type { VarOrigin } from './types.js';

/**
 * A problem in an inventory, a group_vars/host_vars file or a host pattern.
 * The message names the file (and line where known), the dotted path and what was expected:
 * `inventory.yaml:12: all.children.hypervisors.hosts.hyp1.ansible_port: expected an integer 1-65535, got "22a"`.
 */
export class InventoryError extends VzsbError {
  readonly source: string | undefined;
  readonly path: string | undefined;
  readonly line: number | undefined;

  constructor(message: string, where: Partial<VarOrigin> = {}) {
    super('E_INVENTORY', `${prefix(where)}${message}`);
    this.name = 'InventoryError';
    this.source = where.source;
    this.path = where.path;
    this.line = where.line;
  }
}

/**
 * Several problems found in one pass (each bad field, not only the first). The message lists
 * them one per line, in the order of the file; `errors` has each one.
 */
export class InventoryErrors extends InventoryError {
  readonly errors: InventoryError[];
  constructor(errors: InventoryError[]) {
    super(`${errors.length} problems in the inventory:\n${errors.map((e) => `  ${e.message}`).join('\n')}`);
    this.name = 'InventoryErrors';
    this.errors = errors;
  }
}

/**
 * Run `step` for each item, collecting InventoryErrors instead of stopping at the first;
 * other errors go through at once. `into` receives the collected ones.
 */
export function collectErrors<T>(items: Iterable<T>, into: InventoryError[], step: (item: T) => void): void {
  for (const item of items) {
    try {
      step(item);
    } catch (err) {
      if (err instanceof InventoryErrors) into.push(...err.errors);
      else if (err instanceof InventoryError) into.push(err);
      else throw err;
    }
  }
}

/** Throw what was collected: the one error as it is, several as one InventoryErrors. */
export function throwCollected(errors: InventoryError[]): void {
  if (errors.length === 1) throw errors[0];
  if (errors.length > 1) throw new InventoryErrors(errors);
}

/** `expected X, got Y` at a location. */
export function expected(where: Partial<VarOrigin>, what: string, got: unknown): InventoryError {
  return new InventoryError(`expected ${what}, got ${describe(got)}`, where);
}

export function prefix(where: Partial<VarOrigin>): string {
  let out = '';
  if (where.source) out += where.line ? `${where.source}:${where.line}: ` : `${where.source}: `;
  if (where.path) out += `${where.path}: `;
  return out;
}

/** Append a mapping key to a dotted path; keys that would read ambiguously are quoted. */
export function childPath(path: string, key: string): string {
  if (/^[A-Za-z0-9_-]+$/.test(key)) return path ? `${path}.${key}` : key;
  return `${path}[${JSON.stringify(key)}]`;
}
