import { isAbsolute, join, resolve } from 'node:path';
import { describe } from '../../common/errors.js';
import { InventoryError, throwCollected } from './errors.js';
import type { ConnectionSpec, VarOrigin } from './types.js';
import type { VarEntry, VarLayer } from './var-layer.js';

const TRUE = new Set(['y', 'yes', 'on', '1', 'true', 't']);
const FALSE = new Set(['n', 'no', 'off', '0', 'false', 'f']);

/** Ansible's `boolean()`: true/false, yes/no, on/off, 1/0, y/n, t/f in any case, as booleans, numbers or strings. */
export function parseBool(value: unknown): boolean | undefined {
  if (typeof value === 'boolean') return value;
  if (value === 1 || value === 0) return value === 1;
  if (typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (TRUE.has(v)) return true;
    if (FALSE.has(v)) return false;
  }
  return undefined;
}

export interface ConnectionContext {
  baseDir: string;
  homeDir: string;
}

/**
 * The connection of one host from its merged variables. Errors name where the bad value was
 * written (the group, the host or the vars file), and the host it was merged into.
 */
export function connectionFor(name: string, vars: VarLayer, ctx: ConnectionContext): ConnectionSpec {
  // The first name set wins, in Ansible's MAGIC_VARIABLE_MAPPING order: the ansible_ssh_* spellings first.
  const get = (...keys: string[]): VarEntry | undefined => {
    for (const key of keys) {
      const entry = vars.get(key);
      if (entry !== undefined && entry.value !== null) {
        if (typeof entry.value === 'string' && entry.value.includes('{{')) {
          throw fail(entry.origin, name, 'a plain value (templated connection variables are not supported)', entry.value);
        }
        if (entry.value && typeof entry.value === 'object' && '__ansible_vault' in entry.value) {
          throw new InventoryError(`expected a plain value, got a !vault value: vzsb does not decrypt Ansible Vault`, entry.origin);
        }
        return entry;
      }
    }
    return undefined;
  };
  const str = (entry: VarEntry | undefined): string | undefined => {
    if (entry === undefined) return undefined;
    if (typeof entry.value === 'number') return String(entry.value);
    if (typeof entry.value !== 'string' || entry.value.trim() === '') throw fail(entry.origin, name, 'a non-empty string', entry.value);
    return entry.value;
  };

  // Every bad connection variable is named, not only the first.
  const errors: InventoryError[] = [];
  const attempt = <T>(fn: () => T, fallback: T): T => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof InventoryError)) throw err;
      errors.push(err);
      return fallback;
    }
  };

  const kind = attempt((): ConnectionSpec['kind'] => {
    const connection = get('ansible_connection');
    if (!connection) return 'ssh';
    const value = str(connection)!.replace(/^ansible\.(builtin|legacy)\./, '');
    if (value === 'local') return 'local';
    if (value === 'ssh' || value === 'smart' || value === 'paramiko') return 'ssh';
    throw fail(connection.origin, name, 'ssh or local', connection.value);
  }, 'ssh');

  const port = attempt(() => {
    const portEntry = get('ansible_ssh_port', 'ansible_port');
    if (!portEntry) return 22;
    const v = portEntry.value;
    const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*[0-9]+\s*$/.test(v) ? Number(v) : NaN;
    if (!Number.isInteger(n) || n < 1 || n > 65535) throw fail(portEntry.origin, name, 'an integer 1-65535', v);
    return n;
  }, 22);

  const become = attempt(() => {
    const becomeEntry = get('ansible_become');
    if (!becomeEntry) return false;
    const b = parseBool(becomeEntry.value);
    if (b === undefined) throw fail(becomeEntry.origin, name, 'a boolean (true/false, yes/no)', becomeEntry.value);
    return b;
  }, false);

  const keyFile = attempt(() => str(get('ansible_ssh_private_key_file', 'ansible_private_key_file')), undefined);
  const spec: ConnectionSpec = {
    kind,
    host: attempt(() => str(get('ansible_ssh_host', 'ansible_host')), undefined) ?? name,
    port,
    user: attempt(() => str(get('ansible_ssh_user', 'ansible_user')), undefined),
    privateKeyFile: keyFile === undefined ? undefined : resolveKeyFile(keyFile, ctx),
    become,
    becomeUser: attempt(() => str(get('ansible_become_user')), undefined) ?? 'root',
  };
  throwCollected(errors);
  return spec;
}

export function resolveKeyFile(file: string, ctx: ConnectionContext): string {
  if (file === '~') return ctx.homeDir;
  if (file.startsWith('~/')) return join(ctx.homeDir, file.slice(2));
  return isAbsolute(file) ? file : resolve(ctx.baseDir, file);
}

function fail(origin: VarOrigin, host: string, what: string, got: unknown): InventoryError {
  const forHost = origin.path.includes(host) ? '' : ` (for host ${host})`;
  return new InventoryError(`expected ${what}, got ${describe(got)}${forHost}`, origin);
}
