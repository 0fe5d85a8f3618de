import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { VzsbError, errorMessage } from '../common/errors.js';
import { parseInput } from '../common/validate.js';
import { evaluateCondition } from './conditions.js';
import { groupHosts } from './inventory/index.js';
import type { Inventory, InventoryHost } from './inventory/types.js';
import { operations } from './operations/index.js';
import type { Play, Task } from './playbook/model.js';
import { renderValue, type Templating } from './templating.js';
import type { FactRef } from './types.js';

/**
 * A host's work for a run, decided on the control machine before connecting: the tasks that
 * apply to it (tags, `when`, loops expanded), with templated and validated arguments, and the
 * facts they need.
 */
export interface ProgramStep {
  /** Position in the host's program; reported back by the apply script. */
  index: number;
  play: Play;
  task: Task;
  /** Name shown to the user (loop items appended). */
  name: string;
  /** Validated arguments, or undefined when skipped. */
  args: unknown;
  skipped?: string;
  handler: boolean;
  /** Stable id of a handler (its pending marker file name). */
  handlerId?: string;
  notify: string[];
  become: boolean;
  /** `when` conditions that read a registered value: decided by the runner while planning. */
  deferredWhen?: Array<string | boolean>;
  /** The variables the deferred conditions see (with the loop item). */
  whenVars?: Record<string, unknown>;
}

export interface HostProgram {
  host: InventoryHost;
  steps: ProgramStep[];
  facts: FactRef[];
  /** First error found while compiling (bad args, template error): the host fails without connecting. */
  error?: { step?: ProgramStep; task?: Task; message: string };
}

export interface CompileOptions {
  inventory: Inventory;
  plays: Play[];
  tags: string[];
  skipTags: string[];
  extraVars: Record<string, unknown>;
  diff: boolean;
  templating: Templating;
  /** Top-level templates/ directory of the project, searched after the playbook's own. */
  templateDirs: string[];
}

/** Name of a handler's pending marker on the host: stable whatever directory vzsb runs from. */
export function handlerId(play: Play, name: string): string {
  return `${basename(play.file)}-${name}`.replace(/[^A-Za-z0-9_.-]+/g, '_').replace(/^[.-]+/, '').slice(0, 200);
}

export function hostVars(inventory: Inventory, host: InventoryHost, play: Play, extraVars: Record<string, unknown>): Record<string, unknown> {
  const groups: Record<string, string[]> = {};
  for (const name of inventory.groups.keys()) groups[name] = groupHosts(inventory, name);
  return {
    ...play.defaults,
    ...host.vars,
    ...play.vars,
    ...extraVars,
    inventory_hostname: host.name,
    inventory_hostname_short: host.name.split('.')[0],
    group_names: host.groups.filter((g) => g !== 'all' && g !== 'ungrouped').sort(),
    groups,
    hostvars: Object.fromEntries([...inventory.hosts.values()].map((h) => [h.name, { ...h.vars, ansible_host: h.connection.host }])),
    inventory_dir: inventory.baseDir,
  };
}

/**
 * Variables whose values are templates ("{{secret \"x\"}}", "{{json (hosturls ...)}}") are
 * rendered with the other variables, as Ansible does lazily. A result that reads as a JSON
 * list or mapping becomes one (Ansible's native types). Values referring to other templated
 * values settle within a few passes.
 */
export function resolveTemplatedVars(t: Templating, vars: Record<string, unknown>, where: string): Record<string, unknown> {
  const out = { ...vars };
  for (let pass = 0; pass < 4; pass++) {
    let changed = false;
    for (const [key, value] of Object.entries(out)) {
      if (typeof value !== 'string' || !value.includes('{{')) continue;
      let rendered = renderValue(t, value, out, `${where}: ${key}`);
      if (typeof rendered === 'string' && /^\s*[[{]/.test(rendered)) {
        try {
          rendered = JSON.parse(rendered);
        } catch {
          // not JSON after all: keep the text
        }
      }
      if (rendered !== value) {
        out[key] = rendered;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return out;
}

function tagged(task: Task, play: Play, tags: string[], skipTags: string[]): boolean {
  const all = new Set([...task.tags, ...play.tags]);
  if (all.has('always')) return !skipTags.includes('always');
  if (skipTags.some((t) => all.has(t))) return false;
  if (all.has('never')) return tags.some((t) => all.has(t));
  if (tags.length === 0 || tags.includes('all')) return true;
  return tags.some((t) => all.has(t));
}

export async function compileHost(host: InventoryHost, plays: Play[], options: CompileOptions): Promise<HostProgram> {
  const program: HostProgram = { host, steps: [], facts: [] };
  // Names registered by earlier tasks of this host: conditions that read them wait for planning.
  const registered = new Set<string>();
  const readsRegistered = (w: string | boolean) => typeof w === 'string' && [...registered].some((n) => new RegExp(`(^|[^\\w.])${n}([^\\w]|$)`).test(w));
  const factKeys = new Set<string>();
  const addFacts = (refs: FactRef[]) => {
    for (const ref of refs) {
      const key = `${ref.fact}:${ref.arg}`;
      if (!factKeys.has(key)) {
        factKeys.add(key);
        program.facts.push(ref);
      }
    }
  };
  for (const play of plays) {
    let vars: Record<string, unknown>;
    try {
      vars = resolveTemplatedVars(options.templating, hostVars(options.inventory, host, play, options.extraVars), `${play.file}:${play.line} (vars of play "${play.name}")`);
    } catch (err) {
      program.error = { message: err instanceof VzsbError ? err.message : errorMessage(err) };
      return program;
    }
    const become = (t: Task) => t.become ?? play.become ?? host.connection.become;
    const compileTask = async (task: Task, handler: boolean): Promise<boolean> => {
      const where = `${task.file}:${task.line}`;
      const base: Omit<ProgramStep, 'index' | 'name' | 'args'> = {
        play,
        task,
        handler,
        notify: task.notify.map((n) => handlerId(play, n)),
        become: become(task),
        ...(handler ? { handlerId: handlerId(play, task.name) } : {}),
      };
      if (!handler && !tagged(task, play, options.tags, options.skipTags)) return true;
      try {
        let items: unknown[] = [undefined];
        if (task.loop !== undefined) {
          const loop = renderValue(options.templating, task.loop, vars, `${where} loop`);
          if (!Array.isArray(loop)) throw new VzsbError('E_PLAYBOOK', `${where}: loop: expected a list, got ${typeof loop}`);
          items = loop;
        }
        for (const item of items) {
          const itemVars = task.loop === undefined ? vars : { ...vars, [task.loopVar]: item };
          const name = task.loop === undefined ? task.name : `${task.name} (${loopLabel(item)})`;
          const index = program.steps.length;
          const deferred = task.when.filter(readsRegistered);
          const whenFalse = task.when.filter((w) => !readsRegistered(w)).find((w) => !evaluateCondition(w, itemVars));
          if (whenFalse !== undefined) {
            program.steps.push({ ...base, index, name, args: undefined, skipped: `when: ${String(whenFalse)}` });
            continue;
          }
          const argsText = JSON.stringify(task.args);
          const inArgs = [...registered].find((n) => new RegExp(`\\{\\{[^}]*\\b${n}\\b`).test(argsText));
          if (inArgs) throw new VzsbError('E_PLAYBOOK', `${where}: task "${task.name}": vzsb reads registered values (${inArgs}) in when, changed_when and failed_when only, not in task arguments`);
          const op = operations.get(task.module)!;
          const rendered = renderValue(options.templating, task.args, itemVars, `${where} (task "${task.name}")`);
          let args = parseInput(op.args, rendered, `${where}: task "${task.name}": ${task.module}`);
          if (op.prepare) {
            args = await op.prepare(args, {
              playbookDir: play.dir,
              renderTemplate: (src) => options.templating.renderFile(findFile(src, [join(play.dir, 'templates'), ...options.templateDirs, play.dir]), itemVars, src),
              readLocalFile: (src) => readFile(findFile(src, [join(play.dir, 'files'), play.dir])),
            });
          }
          addFacts(op.facts(args, { diff: options.diff }));
          const decidedLater = deferred.length > 0 || task.changedWhen !== undefined || task.failedWhen !== undefined;
          if ((task.changedWhen !== undefined && typeof task.changedWhen !== 'boolean') && task.notify.length) {
            throw new VzsbError('E_PLAYBOOK', `${where}: task "${task.name}": vzsb does not combine notify with a changed_when condition (the handler marker is set on the host); use changed_when's "'text' in result.stdout" form or no notify`);
          }
          program.steps.push({ ...base, index, name, args, ...(deferred.length ? { deferredWhen: deferred } : {}), ...(decidedLater ? { whenVars: itemVars } : {}) });
        }
        if (task.register) registered.add(task.register);
        return true;
      } catch (err) {
        program.error = { task, message: err instanceof VzsbError ? err.message : `${where}: task "${task.name}": ${errorMessage(err)}` };
        return false;
      }
    };
    for (const task of play.tasks) if (!(await compileTask(task, false))) return program;
    for (const handler of play.handlers) if (!(await compileTask(handler, true))) return program;
  }
  return program;
}

function findFile(src: string, dirs: string[]): string {
  if (isAbsolute(src)) return src;
  for (const d of dirs) {
    const p = resolve(d, src);
    if (existsSync(p)) return p;
  }
  throw new VzsbError('E_PLAYBOOK', `file ${src} not found in ${dirs.join(', ')}`);
}

/** How a loop item is shown: its `name` when it has one (Ansible's loop_control.label habit). */
function loopLabel(item: unknown): string {
  if (item && typeof item === 'object' && typeof (item as { name?: unknown }).name === 'string') return (item as { name: string }).name;
  return typeof item === 'object' ? JSON.stringify(item) : String(item);
}
