import { isIP } from 'node:net';
import { InventoryError } from './errors.js';
import { LOCALHOST_NAMES } from './parse.js';
import type { Inventory, InventoryHost } from './types.js';

/**
 * Ansible's host patterns ("Patterns: targeting hosts and groups"), for --limit and plays:
 * `all` or `*`; host or group names; globs (`web*`, `*.lab`); `~regex` (matched from the start
 * of the name, like Python's re.match); `group[0]`, `group[1:3]` subscripts (inclusive); unions
 * with `,` or `:`; `&group` intersection and `!group` exclusion. As in Ansible, all plain terms are
 * applied first, then every `&`, then every `!`, whatever their order in the pattern, and a
 * pattern made only of `&`/`!` terms starts from `all`.
 *
 * A term that matches no host and no group is an error naming it (Ansible's "Could not match
 * supplied host pattern", made fatal), and so is an empty pattern (Ansible would take `all`). The result is in inventory order; the implicit localhost
 * (see Inventory.implicitHosts) comes last when a term names it.
 */
export function selectHosts(inventory: Inventory, pattern: string): string[] {
  const split = splitPattern(pattern);
  if (split.length === 0) throw new InventoryError('empty host pattern', { source: inventory.source });
  const terms = orderTerms(split);
  const state: { implicit?: string } = {};
  let selected = new Set<string>();
  for (const term of terms) {
    const op = term[0] === '&' || term[0] === '!' ? term[0] : '';
    const matched = matchTerm(inventory, op ? term.slice(1) : term, state);
    if (op === '&') selected = new Set([...selected].filter((h) => matched.has(h)));
    else if (op === '!') for (const h of matched) selected.delete(h);
    else for (const h of matched) selected.add(h);
  }
  const order = [...inventory.hosts.keys(), ...inventory.implicitHosts.keys()];
  return order.filter((h) => selected.has(h));
}

/** The host a selected name stands for, including the implicit localhost. */
export function getHost(inventory: Inventory, name: string): InventoryHost {
  const host = inventory.hosts.get(name) ?? inventory.implicitHosts.get(name);
  if (!host) throw new InventoryError(`no host "${name}" in the inventory`, { source: inventory.source });
  return host;
}

/** Ansible's split_host_pattern: commas if any, else colons outside brackets (IPv6 addresses stay whole). */
export function splitPattern(pattern: string): string[] {
  let parts: string[];
  if (pattern.includes(',')) parts = pattern.split(',');
  else if (isIP(pattern.trim()) === 6) parts = [pattern];
  else parts = pattern.match(/(?:[^\s:[\]]|\[[^\]]*\])+/g) ?? [];
  return parts.map((p) => p.trim()).filter((p) => p !== '');
}

function orderTerms(terms: string[]): string[] {
  const plain = terms.filter((t) => t[0] !== '&' && t[0] !== '!');
  const and = terms.filter((t) => t[0] === '&');
  const not = terms.filter((t) => t[0] === '!');
  return [...(plain.length ? plain : ['all']), ...and, ...not];
}

function matchTerm(inventory: Inventory, term: string, state: { implicit?: string }): Set<string> {
  if (term === '') throw new InventoryError('empty term in host pattern', { source: inventory.source });
  if (inventory.hosts.has(term)) return new Set([term]);
  const { expr, slice } = splitSubscript(term);
  const test = compile(expr, inventory.source);
  const results = new Set<string>();
  const groups = [...inventory.groups.keys()].filter(test);
  for (const g of groups) for (const h of groupHosts(inventory, g)) results.add(h);
  if (groups.length === 0 || expr[0] === '~' || /[.?*[]/.test(expr)) {
    for (const h of inventory.hosts.keys()) if (test(h)) results.add(h);
  }
  if (results.size === 0 && (LOCALHOST_NAMES as readonly string[]).includes(expr)) {
    // One machine, one host: Ansible names it after the first localhost name asked for.
    const listed = LOCALHOST_NAMES.find((n) => inventory.hosts.has(n));
    results.add(listed ?? state.implicit ?? (state.implicit = expr));
  }
  if (results.size === 0 && groups.length === 0 && expr !== 'all') {
    const hint = expr.includes(':') && !expr.includes('[') ? ' (in a pattern with commas, ":" does not separate terms)' : '';
    throw new InventoryError(`Could not match supplied host pattern: "${expr}" names no host or group${hint}`, { source: inventory.source });
  }
  return slice ? new Set(applySlice([...results], slice, term, inventory.source)) : results;
}

/** Hosts of a group and of its descendants, in inventory order. */
export function groupHosts(inventory: Inventory, group: string): string[] {
  if (group === 'all') return [...inventory.hosts.keys()];
  const member = new Set<string>();
  const visit = (g: string, seen: Set<string>): void => {
    if (seen.has(g)) return;
    seen.add(g);
    const grp = inventory.groups.get(g);
    if (!grp) return;
    grp.hosts.forEach((h) => member.add(h));
    grp.children.forEach((c) => visit(c, seen));
  };
  visit(group, new Set());
  return [...inventory.hosts.keys()].filter((h) => member.has(h));
}

function compile(expr: string, source: string): (name: string) => boolean {
  if (expr[0] === '~') {
    let re: RegExp;
    try {
      re = new RegExp(expr.slice(1), 'y');
    } catch (err) {
      throw new InventoryError(`invalid regular expression in host pattern "${expr}": ${(err as Error).message}`, { source });
    }
    return (name) => {
      re.lastIndex = 0;
      return re.test(name);
    };
  }
  if (!/[*?[]/.test(expr)) return (name) => name === expr;
  const re = new RegExp(`^${globToRegex(expr)}$`, 's');
  return (name) => re.test(name);
}

/** Python's fnmatch: `*`, `?`, `[seq]`, `[!seq]`; an unclosed `[` is literal. */
function globToRegex(glob: string): string {
  let out = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') out += '.*';
    else if (c === '?') out += '.';
    else if (c === '[') {
      let j = i + 1;
      if (glob[j] === '!') j++;
      if (glob[j] === ']') j++;
      while (j < glob.length && glob[j] !== ']') j++;
      if (j >= glob.length) out += '\\[';
      else {
        let body = glob.slice(i + 1, j).replace(/\\/g, '\\\\');
        if (body[0] === '!') body = '^' + body.slice(1);
        else if (body[0] === '^') body = '\\' + body;
        out += `[${body}]`;
        i = j;
      }
    } else out += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return out;
}

interface Slice {
  start: number;
  end: number | undefined;
  range: boolean;
}

/** `web[0]`, `web[-1]`, `web[1:3]`, `web[2:]` (Ansible: inclusive end). Not for `~regex` terms. */
function splitSubscript(term: string): { expr: string; slice: Slice | undefined } {
  if (term[0] === '~') return { expr: term, slice: undefined };
  const m = /^(.+)\[(?:(-?[0-9]+)|([0-9]+):([0-9]*))\]$/s.exec(term);
  if (!m) return { expr: term, slice: undefined };
  if (m[2] !== undefined) return { expr: m[1]!, slice: { start: Number(m[2]), end: undefined, range: false } };
  return { expr: m[1]!, slice: { start: Number(m[3]), end: m[4] ? Number(m[4]) : undefined, range: true } };
}

function applySlice(hosts: string[], slice: Slice, term: string, source: string): string[] {
  if (slice.range) return hosts.slice(slice.start, slice.end === undefined ? undefined : slice.end + 1);
  const index = slice.start < 0 ? hosts.length + slice.start : slice.start;
  const host = hosts[index];
  if (host === undefined) throw new InventoryError(`No hosts matched the subscripted pattern "${term}"`, { source });
  return [host];
}
