import Handlebars from 'handlebars';
import { readFile } from 'node:fs/promises';
import { VzsbError } from '../common/errors.js';

/**
 * Handlebars in strict mode: a missing variable is an error that names the template and line.
 * Templates never HTML-escape (they render config files, not pages).
 */
export interface TemplatingOptions {
  /** `{{secret "name"}}`: a value made once and kept (see secrets.ts). */
  secret?: (name: string) => string;
}

export function createTemplating(options: TemplatingOptions = {}) {
  const hb = Handlebars.create();
  hb.registerHelper('secret', (name: unknown) => {
    if (!options.secret) throw new Error('secrets are not available here');
    if (typeof name !== 'string') throw new Error('secret needs a name: {{secret "name"}}');
    return options.secret(name);
  });
  hb.registerHelper('json', (v: unknown) => new hb.SafeString(JSON.stringify(v)));
  hb.registerHelper('join', (list: unknown, sep: unknown) => (Array.isArray(list) ? list.join(typeof sep === 'string' ? sep : ', ') : String(list)));
  hb.registerHelper('eq', (a: unknown, b: unknown) => a === b);
  hb.registerHelper('ne', (a: unknown, b: unknown) => a !== b);
  hb.registerHelper('and', (...args: unknown[]) => args.slice(0, -1).every(Boolean));
  hb.registerHelper('or', (...args: unknown[]) => args.slice(0, -1).some(Boolean));
  hb.registerHelper('not', (a: unknown) => !a);
  hb.registerHelper('concat', (...args: unknown[]) => args.slice(0, -1).map(String).join(''));
  // Addresses (ansible_host) of a group's hosts: {{join (hostaddrs "balancers") ", "}}
  hb.registerHelper('hostaddrs', (group: unknown, options: Handlebars.HelperOptions) => {
    const root = options.data.root as { groups?: Record<string, string[]>; hostvars?: Record<string, { ansible_host?: string }> };
    const members = root.groups?.[String(group)];
    if (!members) throw new Error(`hostaddrs: no group "${String(group)}" in the inventory`);
    return members.map((h) => root.hostvars?.[h]?.ansible_host ?? h);
  });
  // URLs of a group's hosts: {{json (hosturls "balancers" 8760)}} -> ["http://10.0.0.5:8760"]
  hb.registerHelper('hosturls', (group: unknown, port: unknown, ...rest: unknown[]) => {
    const options = rest[rest.length - 1] as Handlebars.HelperOptions;
    const scheme = rest.length > 1 ? String(rest[0]) : 'http';
    const root = options.data.root as { groups?: Record<string, string[]>; hostvars?: Record<string, { ansible_host?: string }> };
    const members = root.groups?.[String(group)];
    if (!members) throw new Error(`hosturls: no group "${String(group)}" in the inventory`);
    return members.map((h) => {
      const addr = root.hostvars?.[h]?.ansible_host ?? h;
      return `${scheme}://${addr.includes(':') ? `[${addr}]` : addr}:${String(port)}`;
    });
  });
  // Terraform's cidrhost: {{cidrhost "10.1.0.0/24" 1}} -> 10.1.0.1
  hb.registerHelper('add', (...args: unknown[]) => {
    const terms = args.slice(0, -1).map(Number);
    if (terms.some((n) => !Number.isFinite(n))) throw new Error(`add: expected numbers, got ${JSON.stringify(args.slice(0, -1))}`);
    return terms.reduce((a, b) => a + b, 0);
  });
  hb.registerHelper('cidrhost', (cidr: unknown, n: unknown) => cidrHost(String(cidr), Number(n)));
  hb.registerHelper('lines', (list: unknown) => (Array.isArray(list) ? list.join('\n') : String(list ?? '')));
  const cache = new Map<string, HandlebarsTemplateDelegate>();

  function compile(text: string, name: string): HandlebarsTemplateDelegate {
    const key = `${name}\0${text}`;
    let fn = cache.get(key);
    if (!fn) {
      fn = hb.compile(text, { strict: true, noEscape: true, knownHelpersOnly: false });
      cache.set(key, fn);
    }
    return fn;
  }

  function render(text: string, vars: Record<string, unknown>, name: string): string {
    try {
      return compile(text, name)(vars);
    } catch (err) {
      throw templateError(err, name);
    }
  }

  return {
    render,
    async renderFile(path: string, vars: Record<string, unknown>, displayName = path): Promise<string> {
      let text: string;
      try {
        text = await readFile(path, 'utf8');
      } catch (err) {
        throw new VzsbError('E_TEMPLATE', `template ${displayName} cannot be read: ${(err as Error).message}`);
      }
      return render(text, vars, displayName);
    },
  };
}

export type Templating = ReturnType<typeof createTemplating>;

function templateError(err: unknown, name: string): VzsbError {
  const message = err instanceof Error ? err.message : String(err);
  // Handlebars strict mode: '"port" not defined in [object Object] - 3:10'; parse errors: 'Parse error on line 2:'
  const missing = /^"([^"]+)" not defined in .* - (\d+):(\d+)/.exec(message);
  if (missing) return new VzsbError('E_TEMPLATE', `${name}:${missing[2]}: variable "${missing[1]}" is not defined`);
  const parse = /Parse error on line (\d+)/.exec(message);
  if (parse) return new VzsbError('E_TEMPLATE', `${name}:${parse[1]}: ${message.split('\n').slice(-1)[0]}`);
  return new VzsbError('E_TEMPLATE', `${name}: ${message}`);
}

/**
 * Render every string inside a task's arguments. A string that is exactly one expression
 * ("{{ list }}") keeps the value's type, as Ansible does.
 */
export function renderValue(t: Templating, value: unknown, vars: Record<string, unknown>, name: string): unknown {
  if (typeof value === 'string') {
    if (!value.includes('{{')) return value;
    const whole = /^\{\{\s*([A-Za-z_][\w.]*)\s*\}\}$/.exec(value);
    if (whole) {
      const v = lookup(vars, whole[1]!);
      if (v === undefined) throw new VzsbError('E_TEMPLATE', `${name}: variable "${whole[1]}" is not defined`);
      return typeof v === 'string' ? renderValue(t, v, vars, name) : v;
    }
    return t.render(value, vars, name);
  }
  if (Array.isArray(value)) return value.map((v) => renderValue(t, v, vars, name));
  if (value && typeof value === 'object' && !Buffer.isBuffer(value)) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, renderValue(t, v, vars, name)]));
  }
  return value;
}

export function lookup(vars: Record<string, unknown>, path: string): unknown {
  let cur: unknown = vars;
  for (const part of path.split('.')) {
    if (cur === null || typeof cur !== 'object') return undefined;
    cur = (cur as Record<string, unknown>)[part];
  }
  return cur;
}

export function cidrHost(cidr: string, n: number): string {
  const m = /^(\d+)\.(\d+)\.(\d+)\.(\d+)\/(\d+)$/.exec(cidr);
  if (!m) throw new Error(`cidrhost: expected an IPv4 network like 10.1.0.0/24, got "${cidr}"`);
  const len = Number(m[5]);
  const size = 2 ** (32 - len);
  if (!Number.isInteger(n) || n < 0 || n >= size) throw new Error(`cidrhost: host number ${n} is outside ${cidr}`);
  const base = ((Number(m[1]) << 24) | (Number(m[2]) << 16) | (Number(m[3]) << 8) | Number(m[4])) >>> 0;
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  const ip = ((base & mask) + n) >>> 0;
  return [ip >>> 24, (ip >>> 16) & 255, (ip >>> 8) & 255, ip & 255].join('.');
}
