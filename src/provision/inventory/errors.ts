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
