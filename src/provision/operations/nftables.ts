import { z } from 'zod';
import { NFT, type NftablesState } from '../facts/nftables.js';
import { quote } from '../shell.js';
import type { Command, FactRef, Operation } from '../types.js';
import { contentFactsFor, ownership, pathSchema, planFileContent } from './common.js';

const args = z
  .strictObject({
    /** The ruleset text. */
    content: z.string().optional(),
    /** Or a handlebars template from templates/, rendered on the control machine like `template`. */
    src: z.string().min(1).optional(),
    dest: pathSchema.default('/etc/nftables.d/vzsandbox.nft'),
    ...ownership,
    /** Filled by prepare from src. */
    rendered: z.string().optional(),
  })
  .superRefine((a, ctx) => {
    if ((a.src === undefined) === (a.content === undefined)) ctx.addIssue({ code: 'custom', path: ['content'], message: 'exactly one of content or src is required' });
  });
export type NftablesArgs = z.infer<typeof args>;

const nftRef: FactRef = { fact: 'nftables', arg: '' };

const FAMILIES = new Set(['ip', 'ip6', 'inet', 'arp', 'bridge', 'netdev']);

/** Statements of an nft file, comments dropped: "table inet x {" bodies are not descended into. */
function topStatements(text: string): string[] {
  const out: string[] = [];
  let depth = 0;
  for (const raw of text.split('\n')) {
    const line = raw.replace(/#.*$/, '').trim();
    if (!line) continue;
    for (const stmt of line.split(';').map((s) => s.trim()).filter(Boolean)) {
      if (depth === 0) out.push(stmt);
      depth += (stmt.match(/{/g) ?? []).length - (stmt.match(/}/g) ?? []).length;
    }
  }
  return out;
}

function tableOf(words: string[]): string {
  // "table inet x" or "table x" (family ip by default)
  return FAMILIES.has(words[0]!) ? `${words[0]} ${words[1] ?? ''}` : `ip ${words[0] ?? ''}`;
}

/**
 * The tables a ruleset defines, and whether applying it replaces them in one transaction: it
 * starts with `flush ruleset`, or deletes (destroy, or declare-then-delete) each table before
 * defining it. Throws with what is missing otherwise: re-applying would duplicate rules.
 */
export function analyzeRuleset(text: string, source: string): { tables: string[]; flushesAll: boolean } {
  const tables: string[] = [];
  const deleted = new Set<string>();
  let flushesAll = false;
  for (const stmt of topStatements(text)) {
    const words = stmt.replace(/[{}]/g, ' ').split(/\s+/).filter(Boolean);
    if (words[0] === 'flush' && words[1] === 'ruleset') {
      if (tables.length) throw new Error(`${source}: "flush ruleset" must come before the first table`);
      flushesAll = true;
    } else if ((words[0] === 'delete' || words[0] === 'destroy') && words[1] === 'table') {
      deleted.add(tableOf(words.slice(2)));
    } else if (words[0] === 'table' && words.length >= 2 && stmt.includes('{') && !/{\s*}$/.test(stmt)) {
      // A table with a body (a bare "table inet x" or "table inet x {}" only declares it).
      const t = tableOf(words.slice(1));
      if (!flushesAll && !deleted.has(t)) {
        throw new Error(
          `${source}: table ${t} is added to, not replaced: start the ruleset with "flush ruleset", or with "table ${t}" and "delete table ${t}" (or "destroy table ${t}") before its definition`,
        );
      }
      if (!tables.includes(t)) tables.push(t);
    }
  }
  if (!tables.length) throw new Error(`${source}: the ruleset defines no table`);
  return { tables, flushesAll };
}

/**
 * An nftables ruleset file, checked with `nft -c` before it replaces the old file, and applied
 * with `nft -f` (one transaction). Nothing to do when the file is unchanged and the live ruleset
 * has all its tables. A bad ruleset fails the task with nft's message and leaves file and rules.
 */
export const nftablesOperation: Operation<NftablesArgs> = {
  name: 'nftables',
  args,
  async prepare(a, env) {
    if (a.src === undefined) return a;
    return { ...a, rendered: await env.renderTemplate(a.src) };
  },
  facts: (a, o) => [...contentFactsFor(a.dest, o.diff), nftRef],
  plan(a, ctx) {
    const text = a.content ?? a.rendered;
    if (text === undefined) throw new Error(`nftables template ${a.src} was not rendered`);
    const ruleset = analyzeRuleset(text, a.src !== undefined ? `nftables src ${a.src}` : 'nftables content');
    const live = ctx.facts.get<NftablesState>(nftRef);
    const file = planFileContent(ctx.facts, a.dest, Buffer.from(text), a, ctx.wantDiff);
    const missing = ruleset.tables.filter((t) => !live.tables.includes(t));
    const put = file.commands.find((c) => c.kind === 'put');
    const effects: Array<[FactRef, unknown]> = [
      ...file.effects,
      [nftRef, { installed: true, tables: ruleset.flushesAll ? ruleset.tables : [...new Set([...live.tables, ...ruleset.tables])] } satisfies NftablesState],
    ];
    const dest = quote(a.dest);
    if (put) {
      const tmp = `${a.dest}.vzsb-new`;
      const t = quote(tmp);
      const commands: Command[] = [
        { kind: 'shell', script: `mkdir -p -- ${quote(a.dest.replace(/\/[^/]+$/, '') || '/')}` },
        { ...put, path: tmp },
        { kind: 'shell', script: `if ! ${NFT} -c -f ${t}; then rm -f -- ${t}; exit 1; fi\nif ! ${NFT} -f ${t}; then rm -f -- ${t}; exit 1; fi\nmv -f -- ${t} ${dest}` },
      ];
      return { commands, reason: `${file.reason}; apply ${ruleset.tables.join(', ')}`, ...(file.diff ? { diff: file.diff } : {}), effects };
    }
    if (missing.length) {
      return {
        commands: [...file.commands, { kind: 'shell', script: `${NFT} -c -f ${dest}\n${NFT} -f ${dest}` }],
        reason: `${a.dest} is up to date; apply it (live ruleset lacks ${missing.join(', ')})`,
        effects,
      };
    }
    return { commands: file.commands, reason: file.commands.length ? file.reason : `${a.dest} is up to date and applied`, effects };
  },
};
