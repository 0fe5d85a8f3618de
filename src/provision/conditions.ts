import { VzsbError } from '../common/errors.js';
import { lookup } from './templating.js';

/**
 * `when:` conditions: the part of Jinja's expression language that playbooks use.
 *   driver == 'lxc' and not (x is defined) or port > 1024
 *   'gateways' in group_names      os.family != "debian"      flag      enabled | bool
 * Identifiers with dots read variables; undefined variables are an error except under `is defined`.
 */
type Token = { t: 'num' | 'str' | 'id' | 'op' | 'end'; v: string };

function tokenize(src: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (/\s/.test(c)) { i++; continue; }
    if (c === "'" || c === '"') {
      const j = src.indexOf(c, i + 1);
      if (j < 0) throw new Error('unterminated string');
      out.push({ t: 'str', v: src.slice(i + 1, j) });
      i = j + 1;
      continue;
    }
    const num = /^-?\d+(\.\d+)?/.exec(src.slice(i));
    if (num && (c !== '-' || out.length === 0 || out[out.length - 1]!.t === 'op')) {
      out.push({ t: 'num', v: num[0] });
      i += num[0].length;
      continue;
    }
    const op = /^(==|!=|<=|>=|<|>|\(|\)|\[|\]|,|\|)/.exec(src.slice(i));
    if (op) { out.push({ t: 'op', v: op[0] }); i += op[0].length; continue; }
    const id = /^[A-Za-z_][\w.]*/.exec(src.slice(i));
    if (id) { out.push({ t: 'id', v: id[0] }); i += id[0].length; continue; }
    throw new Error(`unexpected character "${c}"`);
  }
  out.push({ t: 'end', v: '' });
  return out;
}

export function evaluateCondition(expr: string | boolean, vars: Record<string, unknown>): boolean {
  if (typeof expr === 'boolean') return expr;
  const src = expr.replace(/^\s*\{\{(.*)\}\}\s*$/, '$1');
  let tokens: Token[];
  try {
    tokens = tokenize(src);
  } catch (err) {
    throw new VzsbError('E_CONDITION', `when: "${expr}": ${(err as Error).message}`);
  }
  let pos = 0;
  const peek = () => tokens[pos]!;
  const next = () => tokens[pos++]!;
  const isWord = (w: string) => peek().t === 'id' && peek().v === w;
  const fail = (msg: string): never => {
    throw new VzsbError('E_CONDITION', `when: "${expr}": ${msg}`);
  };
  const expect = (v: string) => (next().v === v ? undefined : fail(`expected "${v}"`));

  const orExpr = (): unknown => {
    let left = andExpr();
    while (isWord('or')) { next(); const right = andExpr(); left = truthy(left) || truthy(right); }
    return left;
  };
  const andExpr = (): unknown => {
    let left = notExpr();
    while (isWord('and')) { next(); const right = notExpr(); left = truthy(left) && truthy(right); }
    return left;
  };
  const notExpr = (): unknown => {
    if (isWord('not')) { next(); return !truthy(notExpr()); }
    return comparison();
  };
  const comparison = (): unknown => {
    // `x is defined` needs the name, not the value.
    if (peek().t === 'id' && tokens[pos + 1]?.t === 'id' && tokens[pos + 1]!.v === 'is') {
      const name = next().v;
      next();
      let negate = false;
      if (isWord('not')) { next(); negate = true; }
      const test = next().v;
      const value = lookup(vars, name);
      let result: boolean;
      if (test === 'defined') result = value !== undefined;
      else if (test === 'undefined') result = value === undefined;
      else if (test === 'none') result = value === null;
      // tests of a registered result (register:)
      else if (test === 'changed') result = registeredField(value, name, 'changed') === true;
      else if (test === 'skipped') result = registeredField(value, name, 'skipped') === true;
      else if (test === 'failed') result = registeredField(value, name, 'failed') === true;
      else if (test === 'succeeded' || test === 'success' || test === 'successful') result = registeredField(value, name, 'failed') !== true;
      else result = fail(`unknown test "is ${test}"`);
      return negate ? !result : result;
    }
    const left = filtered();
    const op = peek();
    if (op.t === 'op' && ['==', '!=', '<', '>', '<=', '>='].includes(op.v)) {
      next();
      const right = filtered();
      switch (op.v) {
        case '==': return left === right;
        case '!=': return left !== right;
        case '<': return (left as number) < (right as number);
        case '>': return (left as number) > (right as number);
        case '<=': return (left as number) <= (right as number);
        default: return (left as number) >= (right as number);
      }
    }
    if (isWord('in') || (isWord('not') && tokens[pos + 1]?.v === 'in')) {
      let negate = false;
      if (isWord('not')) { next(); negate = true; }
      next();
      const right = filtered();
      const found = Array.isArray(right) ? right.includes(left) : typeof right === 'string' ? right.includes(String(left)) : right && typeof right === 'object' ? String(left) in right : false;
      return negate ? !found : found;
    }
    return left;
  };
  const filtered = (): unknown => {
    let value = primary();
    while (peek().v === '|') {
      next();
      const f = next().v;
      if (f === 'bool') value = toBool(value);
      else if (f === 'int') value = Number.parseInt(String(value), 10);
      else if (f === 'length') value = Array.isArray(value) || typeof value === 'string' ? value.length : Object.keys(value ?? {}).length;
      else fail(`unknown filter "${f}"`);
    }
    return value;
  };
  const primary = (): unknown => {
    const tok = next();
    if (tok.t === 'num') return Number(tok.v);
    if (tok.t === 'str') return tok.v;
    if (tok.t === 'op' && tok.v === '(') { const v = orExpr(); expect(')'); return v; }
    if (tok.t === 'op' && tok.v === '[') {
      const list: unknown[] = [];
      while (peek().v !== ']') { list.push(orExpr()); if (peek().v === ',') next(); else break; }
      expect(']');
      return list;
    }
    if (tok.t === 'id') {
      if (tok.v === 'true' || tok.v === 'True') return true;
      if (tok.v === 'false' || tok.v === 'False') return false;
      if (tok.v === 'none' || tok.v === 'None') return null;
      const value = lookup(vars, tok.v);
      if (value === undefined) fail(`variable "${tok.v}" is not defined`);
      return value;
    }
    return fail(tok.t === 'end' ? 'unexpected end' : `unexpected "${tok.v}"`);
  };
  const result = orExpr();
  if (peek().t !== 'end') fail(`unexpected "${peek().v}"`);
  return truthy(result);
}

function registeredField(value: unknown, name: string, field: string): unknown {
  if (value === undefined) throw new VzsbError('E_CONDITION', `when: variable "${name}" is not defined`);
  return value && typeof value === 'object' ? (value as Record<string, unknown>)[field] : undefined;
}

export function toBool(v: unknown): boolean {
  if (typeof v === 'string') return ['yes', 'true', 'on', '1', 'y'].includes(v.toLowerCase());
  return Boolean(v);
}

function truthy(v: unknown): boolean {
  if (Array.isArray(v)) return v.length > 0;
  if (v && typeof v === 'object') return Object.keys(v).length > 0;
  return Boolean(v);
}
