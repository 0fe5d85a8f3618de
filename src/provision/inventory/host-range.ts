import { isIP } from 'node:net';

/**
 * Host names with ranges, as Ansible writes them: `www[01:50].example.com` (zero padded when the
 * begin has a leading zero), `www[01:50:2]` (stride), `db-[a:f]` (letters), and several ranges in
 * one name (the leftmost varies slowest). Unlike Ansible, a range that would expand to nothing
 * (`[05:01]`) or that mixes letters and numbers (`[a:5]`) is an error, not an empty list or a crash.
 * Throws a plain Error whose message explains the range; callers add the location.
 */
export function expandHostRange(pattern: string): string[] {
  const open = pattern.indexOf('[');
  if (open < 0) {
    if (pattern.includes(']')) throw new Error(`"]" without "[" in host name "${pattern}"`);
    return [pattern];
  }
  const close = pattern.indexOf(']', open);
  if (close < 0) throw new Error(`"[" without "]" in host name "${pattern}"`);
  const head = pattern.slice(0, open);
  if (head.includes(']')) throw new Error(`"]" without "[" in host name "${pattern}"`);
  const tail = pattern.slice(close + 1);
  const items = rangeItems(pattern.slice(open + 1, close), pattern);
  const out: string[] = [];
  for (const item of items) out.push(...expandHostRange(head + item + tail));
  return out;
}

function rangeItems(spec: string, pattern: string): string[] {
  const bad = (why: string) => new Error(`bad host range "[${spec}]" in "${pattern}": ${why}`);
  const parts = spec.split(':');
  if (parts.length !== 2 && parts.length !== 3) throw bad('expected [begin:end] or [begin:end:step]');
  const [begin, end, stepText] = parts as [string, string, string | undefined];
  let step = 1;
  if (stepText !== undefined) {
    if (!/^[0-9]+$/.test(stepText) || Number(stepText) < 1) throw bad(`step must be a positive integer, got "${stepText}"`);
    step = Number(stepText);
  }
  if (/^[0-9]+$/.test(begin) && /^[0-9]+$/.test(end)) {
    const from = Number(begin);
    const to = Number(end);
    if (from > to) throw bad(`begin ${begin} is after end ${end}`);
    const width = begin.length > 1 && begin.startsWith('0') ? begin.length : 0;
    if (width && end.length !== width) throw bad('a zero-padded begin needs an end of the same width');
    const out: string[] = [];
    for (let i = from; i <= to; i += step) out.push(width ? String(i).padStart(width, '0') : String(i));
    return out;
  }
  if (/^[a-z]$/.test(begin) && /^[a-z]$/.test(end) || /^[A-Z]$/.test(begin) && /^[A-Z]$/.test(end)) {
    const from = begin.charCodeAt(0);
    const to = end.charCodeAt(0);
    if (from > to) throw bad(`begin "${begin}" is after end "${end}"`);
    const out: string[] = [];
    for (let c = from; c <= to; c += step) out.push(String.fromCharCode(c));
    return out;
  }
  if (begin === '' || end === '') throw bad('begin and end are both required');
  throw bad('begin and end must both be numbers or both be single letters of the same case');
}

/**
 * Split Ansible's `host:port` suffix off a hosts key. IPv6 addresses are left whole unless
 * bracketed (`[2001:db8::1]:2222`); the colons of ranges (`www[01:09]`) are not port separators.
 */
export function splitHostPort(key: string): { pattern: string; port: string | undefined } {
  const bracketed = /^\[([^\]]+)\](?::([^:]*))?$/.exec(key);
  if (bracketed && isIP(bracketed[1]!) === 6) return { pattern: bracketed[1]!, port: bracketed[2] };
  if (isIP(key)) return { pattern: key, port: undefined };
  const colon = lastColonOutsideBrackets(key);
  if (colon < 0) return { pattern: key, port: undefined };
  const head = key.slice(0, colon);
  if (lastColonOutsideBrackets(head) >= 0) return { pattern: key, port: undefined };
  return { pattern: head, port: key.slice(colon + 1) };
}

function lastColonOutsideBrackets(text: string): number {
  let depth = 0;
  let last = -1;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '[') depth++;
    else if (c === ']') depth = Math.max(0, depth - 1);
    else if (c === ':' && depth === 0) last = i;
  }
  return last;
}
