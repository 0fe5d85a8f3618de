import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import { VzsbError } from '../common/errors.js';
import type { Reporter, TaskEvent } from './runner.js';

/**
 * Secrets made on the first deploy and reused after (like Ansible's password lookup): a YAML
 * file beside the inventory, mode 0600. Templates ask for one with `{{secret "name"}}`.
 * Values never reach the output: the masking reporter replaces them with ********.
 */
export class SecretStore {
  readonly #values = new Map<string, string>();

  /** `generators`: how a named secret is made when it is not a random token (e.g. a key pair). */
  constructor(
    readonly file: string,
    private readonly generators: Readonly<Record<string, () => string>> = {},
  ) {
    if (!existsSync(file)) return;
    let data: unknown;
    try {
      data = parse(readFileSync(file, 'utf8'));
    } catch (err) {
      throw new VzsbError('E_SECRETS', `${file}: not valid YAML: ${(err as Error).message}`);
    }
    if (data === null || data === undefined) return;
    if (typeof data !== 'object' || Array.isArray(data)) throw new VzsbError('E_SECRETS', `${file}: expected a mapping of name: value`);
    for (const [k, v] of Object.entries(data)) {
      if (typeof v !== 'string' || v.length < 16) throw new VzsbError('E_SECRETS', `${file}: ${k}: expected a string of at least 16 characters`);
      this.#values.set(k, v);
    }
  }

  get(name: string): string {
    if (!/^[A-Za-z0-9_.-]+$/.test(name)) throw new VzsbError('E_SECRETS', `secret name "${name}": letters, digits, ".", "_" and "-" only`);
    let value = this.#values.get(name);
    if (value === undefined) {
      value = this.generators[name]?.() ?? randomBytes(24).toString('base64url');
      this.#values.set(name, value);
      const tmp = `${this.file}.tmp-${process.pid}`;
      writeFileSync(tmp, `# Made by vzsb deploy; keep it secret and keep it: hosts are configured with these.\n${stringify(Object.fromEntries(this.#values))}`, { mode: 0o600 });
      renameSync(tmp, this.file);
    }
    return value;
  }

  values(): string[] {
    return [...this.#values.values()];
  }
}

export function mask(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s && out.includes(s)) out = out.split(s).join('********');
  return out;
}

/** Wraps a reporter so that no secret value reaches it. */
export function maskingReporter(inner: Reporter, secrets: () => readonly string[]): Reporter {
  const m = (s: string | undefined) => (s === undefined ? s : mask(s, secrets()));
  return {
    runStart: (info) => inner.runStart(info),
    hostStart: (host) => inner.hostStart(host),
    task: (e: TaskEvent) =>
      inner.task({
        ...e,
        reason: m(e.reason)!,
        ...(e.commands ? { commands: e.commands.map((c) => m(c)!) } : {}),
        ...(e.diff ? { diff: e.diff.map((d) => ({ ...d, before: m(d.before)!, after: m(d.after)! })) } : {}),
        ...(e.stdout !== undefined ? { stdout: m(e.stdout)! } : {}),
        ...(e.stderr !== undefined ? { stderr: m(e.stderr)! } : {}),
      }),
    hostEnd: (s) => inner.hostEnd({ ...s, ...(s.error ? { error: m(s.error)! } : {}) }),
    runEnd: (hosts, info) => inner.runEnd(hosts.map((s) => ({ ...s, ...(s.error ? { error: m(s.error)! } : {}) })), info),
  };
}
