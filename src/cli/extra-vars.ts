import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { VzsbError, describe } from '../common/errors.js';

/**
 * `-e/--extra-vars` as ansible-playbook reads it (lib/ansible/utils/vars.py load_extra_vars):
 * `@file` is a YAML/JSON file; a value starting with `{` or `[` is YAML/JSON text; anything
 * else is `key=value` pairs (quotes group a value with spaces, values stay strings). Each must
 * give a mapping; later ones override earlier ones key by key. Where Ansible turns a word
 * without `=` into `_raw_params`, this names it as an error: nothing is silently dropped.
 * Every error is E_USAGE (exit 1) and says which `-e` and what was wrong.
 */
export async function parseExtraVars(list: readonly string[], read: (path: string) => Promise<string> = (p) => readFile(p, 'utf8')): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const item of list) Object.assign(out, await parseOne(item, read));
  return out;
}

async function parseOne(item: string, read: (path: string) => Promise<string>): Promise<Record<string, unknown>> {
  const where = `-e ${JSON.stringify(item.length > 60 ? item.slice(0, 57) + '...' : item)}`;
  const text = item.trim();
  if (text === '') throw usage(`${where}: expected key=value, a YAML/JSON mapping or @file, got nothing`);
  if (text.startsWith('@')) {
    const path = text.slice(1);
    if (path === '') throw usage(`${where}: expected a file name after @`);
    let content: string;
    try {
      content = await read(path);
    } catch (err) {
      throw usage(`${where}: cannot read ${path}: ${(err as Error).message}`);
    }
    return mapping(parseText(content, `${where}: ${path}`), `${where}: ${path}`);
  }
  if (text.startsWith('/') || text.startsWith('.')) throw usage(`${where}: to read a file, prepend its name with @ (-e @${text})`);
  if (text.startsWith('{') || text.startsWith('[')) return mapping(parseText(text, where), where);
  return keyValues(text, where);
}

function parseText(text: string, where: string): unknown {
  try {
    return parseYaml(text, { uniqueKeys: true });
  } catch (err) {
    throw usage(`${where}: not valid YAML or JSON: ${firstLine((err as Error).message)}`);
  }
}

function mapping(value: unknown, where: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw usage(`${where}: expected a mapping of variable names to values, got ${describe(value)}`);
  }
  return value as Record<string, unknown>;
}

/** `a=1 b="two words" c='x'`: shell-like words, each `name=value`. */
function keyValues(text: string, where: string): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const bad: string[] = [];
  for (const word of splitWords(text, where)) {
    const eq = word.indexOf('=');
    const key = eq < 0 ? word : word.slice(0, eq);
    if (eq < 0) bad.push(`${JSON.stringify(word)} is not key=value`);
    else if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) bad.push(`${JSON.stringify(key)} is not a variable name`);
    else out[key] = word.slice(eq + 1);
  }
  if (bad.length > 0) throw usage(`${where}: ${bad.join('; ')} (expected key=value pairs, a YAML/JSON mapping or @file)`);
  return out;
}

function splitWords(text: string, where: string): string[] {
  const words: string[] = [];
  let cur = '';
  let quote: string | undefined;
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text[i]!;
    if (quote) {
      if (ch === '\\' && quote === '"' && i + 1 < text.length) cur += text[++i];
      else if (ch === quote) quote = undefined;
      else cur += ch;
    } else if (ch === '"' || ch === "'") {
      quote = ch;
      inWord = true;
    } else if (/\s/.test(ch)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += ch;
      inWord = true;
    }
  }
  if (quote) throw usage(`${where}: unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

function firstLine(message: string): string {
  return (message.split('\n')[0] ?? message).replace(/:\s*$/, '');
}

function usage(message: string): VzsbError {
  return new VzsbError('E_USAGE', message);
}
