import type { z } from 'zod';

/**
 * Operations plan, facts read, one runner executes (see docs/provisioning.md).
 *
 * An operation never runs anything. It names the facts it needs (`facts`), and given their
 * values (`plan`) it yields the commands that bring the host to the wanted state, or none when
 * the host is already so. It also returns the facts as they will be after its commands ran, so
 * that later tasks of the same run (and check mode) plan against the predicted state.
 */

/** A fact request: a fact module and its argument, e.g. {fact: 'file', arg: '/etc/shells'}. */
export interface FactRef {
  fact: string;
  arg: string;
}

export function factKey(ref: FactRef): string {
  return `${ref.fact}:${ref.arg}`;
}

/** A fact module: one shell snippet that prints the fact, and a parser. Snippets never fail the script. */
export interface FactModule<T = unknown> {
  name: string;
  /** POSIX sh snippet writing the raw fact to stdout. Must exit 0 whatever the host's state. */
  command(arg: string): string;
  parse(stdout: string, arg: string): T;
}

/** One planned command. `shell` runs under `sh -e`; `put` writes a file atomically. */
export type Command =
  | { kind: 'shell'; script: string; mask?: readonly string[] }
  | {
      kind: 'put';
      path: string;
      content: Buffer;
      mode?: string;
      owner?: string;
      group?: string;
      /** A check run on the new file before it replaces the old one; %s is its path (e.g. "visudo -cf %s"). */
      validate?: string;
    };

export interface Diff {
  path?: string;
  before: string;
  after: string;
}

export interface Plan {
  /** Commands to run; empty means the host is already in the wanted state. */
  commands: Command[];
  /** Why nothing is needed, or what will change: shown to the user. */
  reason: string;
  diff?: Diff[];
  /** Facts as they will be after the commands ran. */
  effects?: Array<[FactRef, unknown]>;
  /**
   * Whether success of the commands means "changed". Default: commands.length > 0.
   * A command operation may decide after running (changed_when); see `changedWhen`.
   */
  changedWhen?: ChangedWhen;
  /** In check mode: report the task skipped with this reason (Ansible's command without creates/removes). */
  checkSkipped?: string;
}

/** Decided from the command's result, on the control machine. */
export type ChangedWhen = { always: boolean } | { stdoutContains: string } | { stdoutNotContains: string };

/** What the host looks like, as far as planning is concerned. */
export interface HostFacts {
  os: OsFacts;
  get<T>(ref: FactRef): T;
}

export interface OsFacts {
  id: string; // debian, ubuntu, rhel, ...
  versionId: string;
  family: 'debian' | 'redhat' | 'unknown';
  packageManager: 'apt' | 'dnf' | 'yum' | 'none';
  /** systemd when PID 1 is systemd; otherwise the documented fallback runs services. */
  initSystem: 'systemd' | 'other';
  arch: string;
  user: string;
  hostname: string;
}

export interface PlanContext {
  facts: HostFacts;
  /** Host variables after play vars were applied, for operations that need them (rare). */
  vars: Record<string, unknown>;
  check: boolean;
  wantDiff: boolean;
}

export interface Operation<A = any> {
  name: string;
  /** Validates the task's arguments after templating. */
  args: z.ZodType<A>;
  /**
   * Runs on the control machine before anything is sent: reads local files, renders templates.
   * Its result replaces the arguments. Optional.
   */
  prepare?(args: A, env: PrepareEnv): A | Promise<A>;
  /** Facts the plan will read, decided from the arguments alone (fact snippets adapt to the OS). */
  facts(args: A, options: { diff: boolean }): FactRef[];
  plan(args: A, ctx: PlanContext): Plan;
}

export interface PrepareEnv {
  /** Directory of the playbook: relative `src` paths resolve against it (and its files/ and templates/). */
  playbookDir: string;
  /** Render a handlebars template file (strict: a missing variable names template and line). */
  renderTemplate(src: string): Promise<string>;
  /** Read a local file for copy. */
  readLocalFile(src: string): Promise<Buffer>;
}
