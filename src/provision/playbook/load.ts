import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, relative, resolve } from 'node:path';
import { LineCounter, parseDocument, isAlias, isMap, isSeq, type Node, type YAMLMap, type YAMLSeq } from 'yaml';
import { VzsbError, describe } from '../../common/errors.js';
import { pyyamlTags } from '../inventory/yaml-source.js';
import type { Play, Playbook, Task } from './model.js';

const PLAY_KEYS = new Set(['name', 'hosts', 'become', 'become_user', 'vars', 'defaults', 'serial', 'max_fail_percentage', 'tags', 'tasks', 'handlers', 'gather_facts', 'pre_tasks', 'post_tasks']);
const TASK_KEYS = new Set(['name', 'tags', 'when', 'notify', 'loop', 'with_items', 'loop_control', 'ignore_errors', 'become', 'register', 'args', 'changed_when', 'failed_when', 'no_log']);

export interface LoadOptions {
  /** Module names the runner knows (for "unknown module" errors). */
  modules: ReadonlySet<string>;
  /** Paths in messages are shown relative to this directory. */
  cwd?: string;
}

/** Load a playbook file, following `import_playbook`. */
export async function loadPlaybook(path: string, options: LoadOptions): Promise<Playbook> {
  const plays: Play[] = [];
  await loadInto(resolve(path), options, plays, []);
  return { file: path, plays };
}

async function loadInto(path: string, options: LoadOptions, plays: Play[], stack: string[]): Promise<void> {
  const shown = relative(options.cwd ?? process.cwd(), path) || path;
  if (stack.includes(path)) throw new VzsbError('E_PLAYBOOK', `${shown}: import_playbook loop (${[...stack, path].join(' -> ')})`);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VzsbError('E_PLAYBOOK', `cannot read playbook ${shown}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  const { ctx, root, doc } = parseFile(path, text, options, 'plays');
  const seq = root as YAMLSeq;
  for (let i = 0; i < seq.items.length; i++) {
    const node = ctx.deref(seq.items[i] as Node);
    const at = `[${i}]`;
    if (!isMap(node)) ctx.fail(node, at, `expected a play (a mapping), got ${describe(doc.toJS().at?.(i))}`);
    const map = node as YAMLMap;
    const raw = ctx.js(map) as Record<string, unknown>;
    if ('import_playbook' in raw) {
      if (typeof raw.import_playbook !== 'string') ctx.fail(node, `${at}.import_playbook`, 'expected a file name');
      await loadInto(resolve(dirname(path), raw.import_playbook as string), options, plays, [...stack, path]);
      continue;
    }
    plays.push(parsePlay(map, raw, at, ctx));
  }
}

/** Parse one YAML file whose top level must be a list (of plays, or of tasks for import_tasks). */
function parseFile(path: string, text: string, options: LoadOptions, what: 'plays' | 'tasks') {
  const shown = relative(options.cwd ?? process.cwd(), path) || path;
  const lines = new LineCounter();
  // YAML 1.1 as PyYAML reads it, like Ansible and like the inventory loader: `mode: 0444` is octal
  // 0444 (under 1.2 it would be decimal 444, i.e. 0674), `yes`/`no`/`on`/`off` are booleans.
  const doc = parseDocument(text, { version: '1.1', merge: true, customTags: pyyamlTags, lineCounter: lines, uniqueKeys: true, prettyErrors: false });
  if (doc.errors.length) {
    const e = doc.errors[0]!;
    throw new VzsbError('E_PLAYBOOK', `${shown}:${lines.linePos(e.pos[0]).line}: ${e.message.split('\n')[0]}`);
  }
  const lineOf = (node: Node | null | undefined) => (node?.range ? lines.linePos(node.range[0]).line : 0);
  const fail = (node: Node | null | undefined, at: string, msg: string): never => {
    throw new VzsbError('E_PLAYBOOK', `${shown}:${lineOf(node)}: ${at}: ${msg}`);
  };
  const root = doc.contents;
  if (!isSeq(root)) fail(root, '(root)', `expected a list of ${what}, got ${describe(doc.toJS())}`);
  // Aliases (`*common`) and merge keys (`<<: *base`) resolve against the document.
  const deref = (node: Node): Node => (isAlias(node) ? ((node.resolve(doc) as Node | undefined) ?? node) : node);
  const js = (node: Node): unknown => node.toJS(doc, { maxAliasCount: 1000 });
  const ctx: Ctx = { path, shown, lineOf, fail, options, deref, js };
  return { ctx, root: root as YAMLSeq, doc };
}

interface Ctx {
  path: string;
  shown: string;
  lineOf: (n: Node | null | undefined) => number;
  fail: (n: Node | null | undefined, path: string, msg: string) => never;
  options: LoadOptions;
  deref: (n: Node) => Node;
  js: (n: Node) => unknown;
}

function parsePlay(map: YAMLMap, raw: Record<string, unknown>, at: string, ctx: Ctx): Play {
  const { fail } = ctx;
  for (const key of Object.keys(raw)) {
    if (!PLAY_KEYS.has(key)) fail(map.get(key, true) as Node, `${at}.${key}`, `unknown play keyword (known: ${[...PLAY_KEYS].join(', ')})`);
  }
  const hosts = Array.isArray(raw.hosts) ? raw.hosts.join(':') : raw.hosts;
  if (typeof hosts !== 'string' || !hosts) fail(map, `${at}.hosts`, `expected a host pattern, got ${describe(raw.hosts)}`);
  const mapping = (key: string): Record<string, unknown> => {
    const v = raw[key];
    if (v === undefined || v === null) return {};
    if (typeof v !== 'object' || Array.isArray(v)) fail(map.get(key, true) as Node, `${at}.${key}`, `expected a mapping, got ${describe(v)}`);
    return v as Record<string, unknown>;
  };
  const serial = raw.serial;
  if (serial !== undefined && !(typeof serial === 'number' && serial > 0) && !(typeof serial === 'string' && /^\d+%?$/.test(serial))) {
    fail(map.get('serial', true) as Node, `${at}.serial`, `expected a count or a percentage like "25%", got ${describe(serial)}`);
  }
  const mfp = raw.max_fail_percentage;
  if (mfp !== undefined && !(typeof mfp === 'number' && mfp >= 0 && mfp <= 100)) fail(map, `${at}.max_fail_percentage`, `expected 0-100, got ${describe(mfp)}`);
  const taskList = (key: string, handler: boolean): Task[] => {
    const found = map.get(key, true) as Node | undefined;
    if (found === undefined || raw[key] === null) return [];
    const node = ctx.deref(found);
    if (!isSeq(node)) return fail(node, `${at}.${key}`, `expected a list of tasks, got ${describe(raw[key])}`);
    return (node as YAMLSeq).items.flatMap((item, j) => expandTask(item as Node, `${at}.${key}[${j}]`, ctx, handler, []));
  };
  const name = typeof raw.name === 'string' ? raw.name : `play on ${hosts}`;
  const tasks = [...taskList('pre_tasks', false), ...taskList('tasks', false), ...taskList('post_tasks', false)];
  const handlers = taskList('handlers', true);
  const handlerNames = new Set(handlers.map((h) => h.name));
  for (const task of [...tasks, ...handlers]) {
    for (const n of task.notify) {
      if (!handlerNames.has(n)) {
        throw new VzsbError('E_PLAYBOOK', `${task.file}:${task.line}: task "${task.name}" notifies "${n}", which is not a handler of play "${name}" (handlers: ${[...handlerNames].join(', ') || 'none'})`);
      }
    }
  }
  return {
    name,
    hosts: hosts as string,
    become: raw.become === undefined ? undefined : bool(raw.become, () => fail(map, `${at}.become`, 'expected a boolean')),
    becomeUser: typeof raw.become_user === 'string' ? raw.become_user : undefined,
    defaults: mapping('defaults'),
    vars: mapping('vars'),
    serial: serial as number | string | undefined,
    maxFailPercentage: mfp as number | undefined,
    tags: stringList(raw.tags, () => fail(map, `${at}.tags`, 'expected a tag or a list of tags')),
    tasks,
    handlers,
    dir: dirname(ctx.path),
    file: ctx.shown,
    line: ctx.lineOf(map),
  };
}

/** A task, or the tasks of an `import_tasks: file.yaml` entry (inlined where it stands). */
function expandTask(item: Node, at: string, ctx: Ctx, handler: boolean, stack: string[]): Task[] {
  const node = ctx.deref(item);
  if (isMap(node) && (node as YAMLMap).has('import_tasks')) {
    const raw = ctx.js(node) as Record<string, unknown>;
    const extra = Object.keys(raw).filter((k) => k !== 'import_tasks');
    if (extra.length) ctx.fail(node, at, `import_tasks takes no other keywords (got ${extra.join(', ')})`);
    if (typeof raw.import_tasks !== 'string') ctx.fail(node, `${at}.import_tasks`, 'expected a file name');
    const file = resolve(dirname(ctx.path), raw.import_tasks as string);
    if (stack.includes(file)) ctx.fail(node, `${at}.import_tasks`, `import loop (${[...stack, file].join(' -> ')})`);
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      return ctx.fail(node, `${at}.import_tasks`, `cannot read ${raw.import_tasks}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
    }
    const inner = parseFile(file, text, ctx.options, 'tasks');
    return inner.root.items.flatMap((item, j) => expandTask(item as Node, `[${j}]`, inner.ctx, handler, [...stack, file]));
  }
  return [parseTask(node, at, ctx, handler)];
}

function parseTask(node: Node, at: string, ctx: Ctx, handler: boolean): Task {
  void handler;
  const { fail } = ctx;
  if (!isMap(node)) return fail(node, at, 'expected a task (a mapping)');
  const map = node as YAMLMap;
  const raw = ctx.js(map) as Record<string, unknown>;
  const moduleKeys = Object.keys(raw).filter((k) => !TASK_KEYS.has(k));
  if (moduleKeys.length === 0) fail(map, at, 'no module: a task needs one of ' + [...ctx.options.modules].sort().join(', '));
  if (moduleKeys.length > 1) fail(map, at, `more than one module or unknown keywords: ${moduleKeys.join(', ')}`);
  const module = moduleKeys[0]!.replace(/^ansible\.builtin\./, '');
  if (!ctx.options.modules.has(module)) {
    fail(map.get(moduleKeys[0], true) as Node, `${at}.${moduleKeys[0]}`, `unknown module (known: ${[...ctx.options.modules].sort().join(', ')})`);
  }
  let args = raw[moduleKeys[0]!];
  if (typeof args === 'string') args = freeForm(module, args);
  if (args === null || args === undefined) args = {};
  if (typeof args !== 'object' || Array.isArray(args)) fail(map, `${at}.${moduleKeys[0]}`, `expected arguments as a mapping, got ${describe(args)}`);
  const extra = raw.args;
  if (extra !== undefined && (typeof extra !== 'object' || extra === null || Array.isArray(extra))) fail(map, `${at}.args`, 'expected a mapping');
  const merged: Record<string, unknown> = { ...(args as object), ...((extra as object) ?? {}) };
  // changed_when: a command's simple forms are decided on the host; any other condition by the runner
  let changedExpr: string | boolean | undefined;
  if (raw.changed_when !== undefined) {
    const simple = changedWhen(raw.changed_when);
    if ((module === 'command' || module === 'shell') && (typeof simple === 'boolean' || (simple !== null && typeof simple === 'object'))) merged.changed_when = simple;
    else changedExpr = condition(raw.changed_when, () => fail(map, `${at}.changed_when`, `expected a condition, got ${describe(raw.changed_when)}`));
  }
  const failedExpr = raw.failed_when === undefined ? undefined : condition(raw.failed_when, () => fail(map, `${at}.failed_when`, `expected a condition, got ${describe(raw.failed_when)}`));
  if (raw.no_log !== undefined && (module === 'command' || module === 'shell')) merged.no_log = raw.no_log;
  const loop = raw.loop ?? raw.with_items;
  const loopControl = (raw.loop_control ?? {}) as Record<string, unknown>;
  const label = firstArg(merged);
  const whenRaw = raw.when;
  const when = whenRaw === undefined ? [] : Array.isArray(whenRaw) ? whenRaw : [whenRaw];
  for (const w of when) if (typeof w !== 'string' && typeof w !== 'boolean') fail(map, `${at}.when`, `expected a condition, got ${describe(w)}`);
  return {
    name: typeof raw.name === 'string' ? raw.name : `${module}${label ? ` ${label}` : ''}`,
    module,
    args: merged,
    tags: stringList(raw.tags, () => fail(map, `${at}.tags`, 'expected a tag or a list of tags')),
    when: when as Array<string | boolean>,
    notify: stringList(raw.notify, () => fail(map, `${at}.notify`, 'expected a handler name or a list')),
    loop,
    loopVar: typeof loopControl.loop_var === 'string' ? loopControl.loop_var : 'item',
    ignoreErrors: raw.ignore_errors === undefined ? false : bool(raw.ignore_errors, () => fail(map, `${at}.ignore_errors`, 'expected a boolean')),
    become: raw.become === undefined ? undefined : bool(raw.become, () => fail(map, `${at}.become`, 'expected a boolean')),
    register: typeof raw.register === 'string' ? raw.register : undefined,
    ...(changedExpr !== undefined ? { changedWhen: changedExpr } : {}),
    ...(failedExpr !== undefined ? { failedWhen: failedExpr } : {}),
    file: ctx.shown,
    line: ctx.lineOf(map),
  };
}

/** `command: make install chdir=/src creates=/usr/bin/x` */
function freeForm(module: string, text: string): Record<string, unknown> {
  if (module === 'command' || module === 'shell') {
    const args: Record<string, unknown> = {};
    const rest = text.replace(/\s+(chdir|creates|removes)=(\S+)/g, (_m, k: string, v: string) => {
      args[k] = v;
      return '';
    });
    return { ...args, cmd: rest.trim() };
  }
  const args: Record<string, unknown> = {};
  for (const m of text.matchAll(/(\w+)=("([^"]*)"|'([^']*)'|\S+)/g)) args[m[1]!] = m[3] ?? m[4] ?? m[2];
  return args;
}

function changedWhen(v: unknown): unknown {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') {
    if (/^(false|no)$/i.test(v.trim())) return false;
    if (/^(true|yes)$/i.test(v.trim())) return true;
    const m = /^\s*['"](.+)['"]\s+(not\s+)?in\s+\w+\.stdout\s*$/.exec(v);
    if (m) return m[2] ? { stdout_not_contains: m[1] } : { stdout_contains: m[1] };
  }
  return v;
}

/** A condition: a string, a boolean, or a list (all must hold), as Ansible's changed_when/failed_when. */
function condition(v: unknown, onError: () => never): string | boolean {
  if (typeof v === 'boolean' || typeof v === 'string') return v;
  if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'boolean')) return v.map((x) => `(${String(x)})`).join(' and ');
  return onError();
}

function firstArg(args: Record<string, unknown>): string {
  for (const k of ['name', 'path', 'dest', 'cmd']) {
    const v = args[k];
    if (typeof v === 'string') return v.length > 50 ? v.slice(0, 47) + '...' : v;
    if (Array.isArray(v)) return v.join(', ');
  }
  return '';
}

function bool(v: unknown, onError: () => never): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(yes|true|no|false)$/i.test(v)) return /^(yes|true)$/i.test(v);
  return onError();
}

function stringList(v: unknown, onError: () => never): string[] {
  if (v === undefined || v === null) return [];
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v as string[];
  return onError();
}
