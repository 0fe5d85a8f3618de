import test from 'ava';
import { lstatSync, mkdirSync, readFileSync, readdirSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { run } from '../../../src/common/exec.js';
import { deploy } from '../../../src/provision/deploy.js';
import type { HostSummary, Reporter, TaskEvent } from '../../../src/provision/runner.js';

/**
 * The same tasks through vzsb and through ansible-playbook (the oracle), local connection, on
 * sandboxes at the same path: the resulting files (content, mode, owner, link targets, and what
 * a case observes outside its sandbox), the ok/changed/failed/skipped report of a check run, a
 * real run and a second run (idempotence) must be the same.
 *
 * Every case of a module is one play on its own inventory host (c0, c1, ...), so one
 * ansible-playbook run covers a module and a failing case stops only its own host.
 */
export interface CompareCase {
  name: string;
  /** Tasks as YAML (a list). `$D` is the case's sandbox directory, `$U` a name unique to the case. */
  tasks: string;
  /** Prepares the sandbox before each tool's first run. */
  setup?: (dir: string, unique: string) => void | Promise<void>;
  /** State outside the sandbox that the tasks change (users, groups), as text. */
  observe?: (dir: string, unique: string) => Promise<string>;
  /** Undoes what the tasks did outside the sandbox (after each tool). */
  cleanup?: (dir: string, unique: string) => Promise<void>;
  /** Files whose content is random (generated keys): compared by type, mode and owner only. */
  volatile?: RegExp;
  /** vzsb deliberately differs here and refuses the task: its error must match. */
  refused?: RegExp;
}

type Status = TaskEvent['status'];
interface RunView {
  statuses: Status[];
  error?: string;
  state: string;
}
interface CaseResult {
  runs: { check: RunView; apply: RunView; again: RunView };
}

export const ansibleAvailable = (await run('ansible-playbook', ['--version']).catch(() => undefined))?.exitCode === 0;
const posixSysctl = ansibleAvailable && (await run('ansible-doc', ['-t', 'module', 'ansible.posix.sysctl', '--json']).catch(() => undefined))?.exitCode === 0;

/** Whether the oracle knows a module (sysctl is in the ansible.posix collection). */
function oracleHas(module: string): boolean {
  return module === 'sysctl' ? posixSysctl : ansibleAvailable;
}

/** Owners by name (ids the system allocates differ with the order accounts were made in). */
function names(file: string): Map<number, string> {
  const out = new Map<number, string>();
  for (const line of readFileSync(file, 'utf8').split('\n').filter(Boolean)) {
    const f = line.split(':');
    // the first name of an id: a non_unique group with gid 0 does not rename root
    if (!out.has(Number(f[2]))) out.set(Number(f[2]), f[0]!);
  }
  return out;
}

/** A listing of a directory tree: type, mode, owner, content bytes or link target of every entry. */
export function snapshot(root: string, volatile?: RegExp): string {
  const out: string[] = [];
  const users = names('/etc/passwd');
  const groups = names('/etc/group');
  const walk = (path: string, rel: string) => {
    for (const name of readdirSync(path).sort()) {
      const p = join(path, name);
      const r = rel ? `${rel}/${name}` : name;
      const st = lstatSync(p);
      const head = `${r.replace(/\.\d+\.\d{4}-\d\d-\d\d@\d\d:\d\d:\d\d~$/, '.<backup>~')} ${(st.mode & 0o7777).toString(8).padStart(4, '0')} ${users.get(st.uid) ?? st.uid}:${groups.get(st.gid) ?? st.gid}`;
      if (st.isSymbolicLink()) out.push(`${head} link -> ${readlinkSync(p)}`);
      else if (st.isDirectory()) {
        out.push(`${head} dir`);
        walk(p, r);
      } else if (st.isFile()) out.push(`${head} file ${volatile?.test(r) ? '<random>' : JSON.stringify(readFileSync(p).toString('latin1'))}`);
      else out.push(`${head} other`);
    }
  };
  walk(root, '');
  return out.join('\n');
}

/** One play per case, on the case's own host. */
function playbookFor(cases: CompareCase[], indices: number[], root: string, uniques: string[]): string {
  return indices
    .map((i) => {
      const tasks = cases[i]!.tasks.replaceAll('$D', join(root, `c${i}`)).replaceAll('$U', uniques[i]!);
      return `- name: ${JSON.stringify(cases[i]!.name)}\n  hosts: c${i}\n  gather_facts: false\n  tasks:\n${tasks.replace(/^/gm, '    ')}\n`;
    })
    .join('');
}

function inventoryFor(cases: CompareCase[]): string {
  const hosts = cases.map((_, i) => `    c${i}: { ansible_connection: local, ansible_python_interpreter: /usr/bin/python3 }`).join('\n');
  return `all:\n  hosts:\n${hosts}\n`;
}

interface ToolRun {
  statuses: Map<string, Status[]>;
  errors: Map<string, string>;
}

/**
 * ansible-playbook ends the whole run once every host of a play has failed: a failing case
 * would hide the cases after it. Cases run in a few parallel chunks (each task costs ansible
 * some 0.4 s of waiting, little CPU), and a chunk that stopped early runs again from the next case.
 */
async function runAnsible(work: string, cases: CompareCase[], root: string, uniques: string[], check: boolean): Promise<ToolRun> {
  const statuses = new Map<string, Status[]>();
  const errors = new Map<string, string>();
  const all = cases.map((_, i) => i);
  const chunks = [0, 1, 2, 3].map((k) => all.filter((i) => i % 4 === k)).filter((c) => c.length);
  await Promise.all(
    chunks.map(async (chunk, k) => {
      let left = chunk;
      while (left.length) {
        const file = join(work, `ansible-${k}.yaml`);
        writeFileSync(file, playbookFor(cases, left, root, uniques));
        const r = await run('ansible-playbook', ['-i', join(work, 'inventory.yaml'), file, ...(check ? ['--check'] : [])], {
          env: {
            ...process.env,
            ANSIBLE_STDOUT_CALLBACK: 'compare_json',
            ANSIBLE_CALLBACK_PLUGINS: join(import.meta.dirname, 'callback'),
            ANSIBLE_LOCALHOST_WARNING: 'False',
            ANSIBLE_PIPELINING: 'True',
            ANSIBLE_NOCOLOR: '1',
            ANSIBLE_RETRY_FILES_ENABLED: 'False',
            ANSIBLE_LOCAL_TEMP: join(work, 'ansible-tmp'),
            ANSIBLE_REMOTE_TMP: join(work, 'ansible-tmp'),
            ANSIBLE_CONFIG: join(work, 'none.cfg'),
          },
          timeoutMs: 600_000,
        });
        const lines = r.stdout.split('\n').filter((l) => l.startsWith('{"host"'));
        if (!lines.length) throw new Error(`ansible-playbook reported nothing (exit ${r.exitCode}): ${r.stderr.slice(-2000)}`);
        let last = -1;
        for (const line of lines) {
          const res = JSON.parse(line) as { host: string; status: Status; msg: string };
          statuses.set(res.host, [...(statuses.get(res.host) ?? []), res.status]);
          if (res.status === 'failed') errors.set(res.host, res.msg);
          last = Math.max(last, left.indexOf(Number(res.host.slice(1))));
        }
        left = left.slice(last + 1);
      }
    }),
  );
  return { statuses, errors };
}

async function runVzsb(work: string, check: boolean): Promise<ToolRun> {
  const statuses = new Map<string, Status[]>();
  const errors = new Map<string, string>();
  const reporter: Reporter = {
    runStart() {},
    hostStart() {},
    task(e) {
      statuses.set(e.host, [...(statuses.get(e.host) ?? []), e.status]);
      if (e.status === 'failed') errors.set(e.host, e.reason + (e.stderr ? `: ${e.stderr}` : ''));
    },
    hostEnd(s: HostSummary) {
      if (s.error) {
        errors.set(s.host, s.error);
        // a task refused before anything ran (bad arguments) is one failed task, as Ansible reports it
        if (!(statuses.get(s.host) ?? []).includes('failed')) statuses.set(s.host, [...(statuses.get(s.host) ?? []), 'failed']);
      }
    },
    runEnd() {},
  };
  await deploy({ inventory: join(work, 'inventory.yaml'), playbook: join(work, 'vzsb.yaml'), check, reporter, forks: 10 });
  return { statuses, errors };
}

async function runTool(tool: 'ansible' | 'vzsb', cases: CompareCase[], work: string, root: string, uniques: string[]): Promise<CaseResult[]> {
  rmSync(root, { recursive: true, force: true });
  mkdirSync(root, { recursive: true });
  for (const [i, c] of cases.entries()) {
    mkdirSync(join(root, `c${i}`));
    await c.setup?.(join(root, `c${i}`), uniques[i]!);
  }
  const views = async (r: ToolRun): Promise<RunView[]> =>
    Promise.all(
      cases.map(async (c, i) => {
        const dir = join(root, `c${i}`);
        const outside = c.observe ? `\n--\n${await c.observe(dir, uniques[i]!)}` : '';
        const error = r.errors.get(`c${i}`);
        return { statuses: r.statuses.get(`c${i}`) ?? [], ...(error ? { error } : {}), state: snapshot(dir, c.volatile) + outside };
      }),
    );
  const once = (check: boolean) => (tool === 'ansible' ? runAnsible(work, cases, root, uniques, check) : runVzsb(work, check));
  try {
    const check = await views(await once(true));
    const apply = await views(await once(false));
    const again = await views(await once(false));
    return cases.map((_, i) => ({ runs: { check: check[i]!, apply: apply[i]!, again: again[i]! } }));
  } finally {
    for (const [i, c] of cases.entries()) await c.cleanup?.(join(root, `c${i}`), uniques[i]!).catch(() => {});
  }
}

/** One ava test per case; the tools run once per module, before the tests. */
export function compareModule(module: string, base: string, cases: CompareCase[]): void {
  const work = join(base, module);
  const root = join(work, 'sandbox');
  const uniques = cases.map((_, i) => `vzc${process.pid % 100000}${module.slice(0, 2)}${i}`);
  let ansible: CaseResult[] | undefined;
  let vzsb: CaseResult[] = [];
  const withOracle = oracleHas(module);
  test.before(async () => {
    mkdirSync(join(work, 'ansible-tmp'), { recursive: true });
    writeFileSync(join(work, 'none.cfg'), '');
    writeFileSync(join(work, 'inventory.yaml'), inventoryFor(cases));
    writeFileSync(join(work, 'vzsb.yaml'), playbookFor(cases, cases.map((_, i) => i), root, uniques));
    if (withOracle) ansible = await runTool('ansible', cases, work, root, uniques);
    vzsb = await runTool('vzsb', cases, work, root, uniques);
    if (process.env.VZSB_COMPARE_TABLE) {
      const rows = cases.map((c, i) => `| ${module} | ${c.name.replaceAll('|', '\\|')} | ${verdict(c, vzsb[i]!, ansible?.[i])} |`);
      writeFileSync(process.env.VZSB_COMPARE_TABLE, rows.join('\n') + '\n', { flag: 'a' });
    }
  });
  for (const [i, c] of cases.entries()) {
    test(`${module}: ${c.name}`, (t) => {
      const mine = vzsb[i]!;
      if (c.refused) {
        t.deepEqual(mine.runs.apply.statuses.slice(-1), ['failed']);
        t.regex(mine.runs.apply.error ?? '', c.refused);
        return;
      }
      if (!ansible) {
        // No oracle here: vzsb must at least be idempotent, and check mode must change nothing.
        t.true(mine.runs.again.statuses.every((s) => s === 'ok' || s === 'skipped' || s === 'failed'), `second run: ${mine.runs.again.statuses.join(',')}`);
        return t.log('ansible-playbook (or the module) is not installed: compared with itself only');
      }
      const theirs = ansible[i]!;
      for (const run of ['check', 'apply', 'again'] as const) {
        t.deepEqual(mine.runs[run].statuses, theirs.runs[run].statuses, `${run}: reports (vzsb ${mine.runs[run].error ?? ''} | ansible ${theirs.runs[run].error ?? ''})`);
        t.is(mine.runs[run].state, theirs.runs[run].state, `${run}: resulting state`);
      }
    });
  }
}

function verdict(c: CompareCase, mine: CaseResult, theirs: CaseResult | undefined): string {
  if (c.refused) return `refused by vzsb: ${(mine.runs.apply.error ?? '').replace(/^.*?: task "[^"]*" \([^)]*\): /, '').replaceAll('|', '\\|').slice(0, 160)}`;
  if (!theirs) return 'no oracle installed';
  const same = (['check', 'apply', 'again'] as const).every(
    (r) => JSON.stringify(mine.runs[r].statuses) === JSON.stringify(theirs.runs[r].statuses) && mine.runs[r].state === theirs.runs[r].state,
  );
  const why = theirs.runs.apply.statuses.includes('failed') ? `: Ansible "${(theirs.runs.apply.error ?? '').split('\n')[0]!.slice(0, 90).replaceAll('|', '\\|')}"` : '';
  return same ? `same (${theirs.runs.apply.statuses.join(', ')}; again ${theirs.runs.again.statuses.join(', ')})${why}` : 'DIFFERS';
}
