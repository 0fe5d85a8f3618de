/**
 * `register: name` values, as later `when` / `changed_when` / `failed_when` conditions read them.
 *
 * Planning happens after the facts round trip, before anything runs, so what a task will report
 * is mostly known then: skipped (its `when` was false), ok (nothing to do), changed (commands
 * planned: if they fail, the run stops there anyway). What only running tells (`rc`, `stdout`,
 * `stderr`, and `changed` of a command whose changed_when reads its output) is a pending field:
 * reading it throws NeedsRun, and the runner then sends the steps planned so far (one more round
 * trip), fills in the results, and plans on. See docs/provisioning.md.
 */
export class NeedsRun extends Error {
  constructor(readonly register: string, readonly field: string) {
    super(`${register}.${field} is known only after the task ran`);
  }
}

export interface KnownResult {
  changed?: boolean;
  failed?: boolean;
  skipped?: boolean;
  rc?: number;
  stdout?: string;
  stderr?: string;
  msg?: string;
}

const RUNTIME_FIELDS = ['changed', 'rc', 'stdout', 'stderr', 'stdout_lines', 'stderr_lines'] as const;

/** A registered value: known fields as values, the others pending (NeedsRun on read). */
export function registeredValue(name: string, known: KnownResult, pending: readonly string[] = []): Record<string, unknown> {
  const value: Record<string, unknown> = { failed: false, ...known };
  if (known.stdout !== undefined) value.stdout_lines = known.stdout.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  if (known.stderr !== undefined) value.stderr_lines = known.stderr.split('\n').filter((l, i, all) => l !== '' || i < all.length - 1);
  for (const field of pending) {
    if (!(RUNTIME_FIELDS as readonly string[]).includes(field)) continue;
    Object.defineProperty(value, field, {
      enumerable: true,
      get() {
        throw new NeedsRun(name, field);
      },
    });
  }
  return value;
}

/** A looped task's value: Ansible's {results: [...], changed: any, skipped: all}. */
export function loopValue(items: Array<Record<string, unknown>>): Record<string, unknown> {
  return {
    results: items,
    get changed() {
      return items.some((i) => i.changed === true);
    },
    get skipped() {
      return items.length > 0 && items.every((i) => i.skipped === true);
    },
    get failed() {
      return items.some((i) => i.failed === true);
    },
  };
}
