/**
 * What the project's sources name outside the project: absolute system paths (LXC config
 * includes, helper binaries, seccomp profiles, ...) and programs run by name, each with the
 * machines it is needed on. Read by test/system/packages.test.ts, which checks with dpkg that
 * each belongs to a package we install.
 *
 * Collected by scanning the sources, not from a list kept by hand, so a new path or program
 * cannot escape the check:
 * - absolute paths under /usr, /bin, /sbin, /lib, /etc, /opt anywhere in the text;
 * - programs started from TypeScript with a literal name (`runner('ip', ...)`, `spawn('ssh', ...)`,
 *   `{ file: 'vzctl', ... }`);
 * - command words of shell text: shell scripts, playbook commands, and TypeScript string
 *   literals that look like command lines (more than one word).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parse } from 'yaml';

/** Where a path or program must exist: the machine running vzsb/tests, a role's hosts, inside a container or lab host. */
export type Context = 'control' | 'hypervisor' | 'balancer' | 'gateway' | 'container' | 'labhost';

export interface SystemRef {
  kind: 'path' | 'program';
  value: string;
  file: string;
  line: number;
  contexts: Context[];
  /** how it was found: a literal program name in a spawn call is certain; a shell word is a guess */
  certain: boolean;
}

const ROLES: Context[] = ['hypervisor', 'balancer', 'gateway'];

/** Which machines a source file's references are needed on (first match wins). */
const FILE_CONTEXTS: Array<[RegExp, Context[]]> = [
  [/^templates\/common\/|^playbooks\/tasks\/|^playbooks\/site\.yaml$/, ROLES],
  [/^(templates\/hypervisor\/|playbooks\/hypervisor\.yaml$)/, ['hypervisor']],
  [/^(templates\/balancer\/|playbooks\/balancer\.yaml$)/, ['balancer']],
  [/^(templates\/gateway\/|playbooks\/gateway\.yaml$)/, ['gateway']],
  // operations and facts run on every target host, and on this machine through the local connector
  // operations and facts run on this machine through the local connector, and on the hosts of
  // every role whose play uses them (see moduleContexts)
  [/^src\/provision\/(facts|operations)\/|^src\/provision\/script\.ts$/, ['control', ...ROLES]],
  [/^src\/daemons\/(drivers|hypervisor)\//, ['control', 'hypervisor']],
  [/^src\/daemons\/balancer\//, ['control', 'balancer']],
  [/^src\/daemons\/common\//, ['control', 'hypervisor', 'balancer']],
  [/^src\/shell\//, ['control', 'gateway']],
  [/^src\/doctor\//, ['control', ...ROLES]],
  [/^(src|bench|scripts|test)\//, ['control']],
];

/**
 * References that live somewhere else than their file's context says: inside the students'
 * containers (the base's root filesystem, BASE_PACKAGES) or inside lab hosts (LAB_HOST_PACKAGES).
 */
const REF_CONTEXTS: Array<{ file: RegExp; value: RegExp; contexts: Context[]; why: string }> = [
  { file: /^src\/daemons\/drivers\/lxc\.ts$/, value: /^\/usr\/sbin\/sshd$|^\/usr\/lib\/openssh\/|^\/sbin\/vzsb-init$/, contexts: ['container'], why: "the container's init and sshd config" },
  { file: /^src\/lab\/base\.ts$/, value: /./, contexts: ['labhost'], why: 'customization script run by chroot inside the lab root filesystem' },
  { file: /^test\/lab\/nested\.test\.ts$/, value: /./, contexts: ['labhost'], why: 'runs inside a lab host' },
  { file: /^src\/daemons\/drivers\/conformance\.ts$/, value: /./, contexts: ['control'], why: 'the conformance suite runs in tests only' },
];

/** Modules (operations) whose code a file of src/provision holds; files not listed serve every module. */
const FILE_MODULES: Array<[RegExp, string[]]> = [
  [/^src\/provision\/facts\/sysctl\.ts$/, ['sysctl']],
  [/^src\/provision\/facts\/nftables\.ts$/, ['nftables']],
  [/^src\/provision\/facts\/packages\.ts$/, ['package']],
  [/^src\/provision\/facts\/service\.ts$|^src\/provision\/operations\/service-helper\.ts$/, ['service']],
  [/^src\/provision\/facts\/users\.ts$/, ['user', 'group']],
  [/^src\/provision\/operations\/(\w+)\.ts$/, []],
];
const MODULE_ALIASES: Record<string, string> = { apt: 'package', dnf: 'package', systemd: 'service', shell: 'command' };

/** The roles whose plays use a module (their tasks, imports included). */
export type RoleModules = Partial<Record<Context, Set<string>>>;

/** Files not scanned: this check's own tables, and fixtures that are data. */
const SKIP_FILES = [/^test\/system\//, /^test\/helpers\/system-refs\.ts$/, /^test\/fixtures\//, /^test\/provision\/operation-cases\//, /\.md$/];

const SCAN_DIRS = ['src', 'templates', 'playbooks', 'scripts', 'bench', 'test'];

/** Absolute paths the scan finds, kept only under these roots: the rest is runtime state or the kernel's. */
const PATH_RE = /(?<![\w.$}{/~-])\/(?:usr|bin|sbin|lib|lib64|etc|opt)\/[A-Za-z0-9._+@-][A-Za-z0-9._+@/-]*/g;

const SPAWN_RE = /\b(?:[\w.]*[Rr]unner|run|runChecked|spawn\w*|execFile\w*|lxc|invoke)\(\s*['"]([A-Za-z0-9][\w.+-]*)['"]/g;
const FILE_KEY_RE = /\bfile:\s*['"]([A-Za-z0-9][\w.+-]*)['"],\s*args:/g;
/** TypeScript files whose string literals hold shell scripts or snippets (elsewhere strings are prose and data). */
const SHELL_IN_STRINGS = /^src\/provision\/(facts|operations)\/|^src\/provision\/script\.ts$|^src\/lab\/|^src\/daemons\/drivers\/|^src\/shell\/setup\.ts$|^src\/common\/rootfs\.ts$|^src\/doctor\//;

export function collectSystemRefs(root: string, roleModules: RoleModules = {}): SystemRef[] {
  const refs: SystemRef[] = [];
  for (const file of listFiles(root)) {
    const rel = relative(root, file);
    if (SKIP_FILES.some((re) => re.test(rel))) continue;
    let base = FILE_CONTEXTS.find(([re]) => re.test(rel))?.[1];
    if (!base) continue;
    const fm = FILE_MODULES.find(([re]) => re.test(rel));
    if (fm) {
      const modules = fm[1].length ? fm[1] : [MODULE_ALIASES[rel.match(fm[0])![1]!] ?? rel.match(fm[0])![1]!];
      base = base.filter((c) => !ROLES.includes(c) || modules.some((m) => roleModules[c]?.has(m) ?? true));
    }
    const text = readFileSync(file, 'utf8');
    const add = (kind: SystemRef['kind'], value: string, index: number, certain: boolean) => {
      const override = REF_CONTEXTS.find((o) => o.file.test(rel) && o.value.test(value));
      refs.push({ kind, value, file: rel, line: lineOf(text, index), contexts: override ? override.contexts : base, certain });
    };
    // comments of TypeScript files describe; only the code names what is used
    const code = rel.endsWith('.ts') ? withoutComments(text) : text;
    for (const m of code.matchAll(PATH_RE)) add('path', m[0].replace(/[.-]+$/, ''), m.index, true);
    if (rel.endsWith('.ts')) {
      for (const m of code.matchAll(SPAWN_RE)) add('program', m[1]!, m.index, true);
      for (const m of code.matchAll(FILE_KEY_RE)) add('program', m[1]!, m.index, true);
      for (const lit of SHELL_IN_STRINGS.test(rel) ? stringLiterals(text) : []) {
        if (!/\s/.test(lit.text.trim())) continue;
        for (const w of commandWords(lit.text)) add('program', w.word, lit.index + w.index, false);
      }
    } else if (/\.sh(\.hbs)?$/.test(rel)) {
      for (const w of commandWords(text)) add('program', w.word, w.index, false);
    } else if (rel.endsWith('.yaml')) {
      // shell in playbooks: command/shell tasks, their checks, cron jobs, validate commands
      for (const body of shellValues(parse(text))) {
        const at = Math.max(0, text.indexOf(body));
        for (const w of commandWords(body)) add('program', w.word, at + w.index, false);
      }
    }
  }
  return refs;
}

const SHELL_KEYS = new Set(['cmd', 'command', 'shell', 'unless', 'onlyif', 'job', 'validate']);

function shellValues(node: unknown): string[] {
  if (Array.isArray(node)) return node.flatMap(shellValues);
  if (!node || typeof node !== 'object') return [];
  return Object.entries(node).flatMap(([k, v]) => (SHELL_KEYS.has(k) && typeof v === 'string' ? [v] : shellValues(v)));
}

/** The text with // and block comments blanked out (offsets kept), strings left alone. */
export function withoutComments(src: string): string {
  const out = src.split('');
  for (const c of commentSpans(src)) for (let i = c[0]; i < c[1]; i++) if (out[i] !== '\n') out[i] = ' ';
  return out.join('');
}

function commentSpans(src: string): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  scanLiterals(src, (start, end) => spans.push([start, end]));
  return spans;
}

function listFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (dir: string) => {
    for (const name of readdirSync(dir)) {
      if (name === 'node_modules' || name.startsWith('.')) continue;
      const p = join(dir, name);
      if (statSync(p).isDirectory()) walk(p);
      else out.push(p);
    }
  };
  for (const d of SCAN_DIRS) walk(join(root, d));
  return out.sort();
}

function lineOf(text: string, index: number): number {
  let n = 1;
  for (let i = 0; i < index; i++) if (text.charCodeAt(i) === 10) n++;
  return n;
}

/** The contents of a TypeScript file's string and template literals (interpolations become "X"), comments skipped. */
export function stringLiterals(src: string): Array<{ text: string; index: number }> {
  return scanLiterals(src);
}

function scanLiterals(src: string, onComment: (start: number, end: number) => void = () => {}): Array<{ text: string; index: number }> {
  const out: Array<{ text: string; index: number }> = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '/' && src[i + 1] === '/') {
      const start = i;
      while (i < src.length && src[i] !== '\n') i++;
      onComment(start, i);
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      onComment(i, end < 0 ? src.length : end + 2);
      i = end < 0 ? src.length : end + 2;
    } else if (c === "'" || c === '"' || c === '`') {
      const start = i + 1;
      let text = '';
      i++;
      while (i < src.length && src[i] !== c) {
        if (src[i] === '\\') {
          text += src[i + 1] === 'n' ? '\n' : (src[i + 1] ?? '');
          i += 2;
        } else if (c === '`' && src[i] === '$' && src[i + 1] === '{') {
          // skip the interpolation, nested braces included
          let depth = 1;
          i += 2;
          while (i < src.length && depth > 0) {
            if (src[i] === '{') depth++;
            else if (src[i] === '}') depth--;
            i++;
          }
          text += 'X';
        } else if (c !== '`' && src[i] === '\n') {
          break; // not a string after all (a regex literal or a stray quote)
        } else {
          text += src[i];
          i++;
        }
      }
      out.push({ text, index: start });
      i++;
    } else i++;
  }
  return out;
}

const SHELL_WORDS = new Set(['kill', 'echo', 'printf', 'test', 'true', 'false', 'cd', 'read', 'wait', 'trap', 'umask', 'type', 'shift', 'unset', 'eval', 'if', 'then', 'else', 'elif', 'fi', 'do', 'done', 'while', 'until', 'for', 'case', 'esac', 'in', '!', '{', '}', 'exec', 'command', 'time', 'nohup', 'env', 'set', 'export', 'local', 'return', 'exit']);

/** Words in command position of shell text: after a line start, ;, &&, ||, |, $(, or a keyword. */
export function commandWords(text: string): Array<{ word: string; index: number }> {
  const out: Array<{ word: string; index: number }> = [];
  // comments out, keeping offsets
  text = text.replace(/(^|[ \t])#[^\n]*/gm, (m) => ' '.repeat(m.length));
  const re = /(^|[;&|`\n]|\$\()[ \t]*((?:(?:if|then|else|elif|do|while|until|!|exec|command|nohup|env|time)[ \t]+|[A-Za-z_][A-Za-z0-9_]*=\S*[ \t]+)*)([a-z][A-Za-z0-9._+-]*)(?=$|[ \t;\n)|&])/gm;
  for (const m of text.matchAll(re)) {
    const word = m[3]!;
    if (SHELL_WORDS.has(word)) continue;
    out.push({ word, index: m.index + m[0].length - word.length });
  }
  return out;
}
