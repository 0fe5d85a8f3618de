import {
  LineCounter,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  parseDocument,
  type Document,
  type Node,
  type Pair,
  type ScalarTag,
  type Tags,
} from 'yaml';
import { InventoryError, childPath } from './errors.js';

/**
 * A parsed YAML (or JSON) file that still knows where each node came from, so that errors can
 * name `file:line`. Parsed as YAML 1.1 like Ansible (PyYAML): `yes`/`no`/`on`/`off` are booleans,
 * `<<` merge keys work. Duplicate keys are an error (Ansible only warns and keeps the last).
 */
export class YamlSource {
  readonly source: string;
  readonly text: string;
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  constructor(text: string, source: string) {
    this.source = source;
    this.text = text;
    this.lines = new LineCounter();
    this.doc = parseDocument(text, {
      version: '1.1',
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
      lineCounter: this.lines,
      customTags: pyyamlTags,
    });
    const first = this.doc.errors[0];
    if (first) {
      const dup = first.code === 'DUPLICATE_KEY' ? findDuplicate(this.doc, first.pos[0]) : undefined;
      if (dup) {
        throw new InventoryError(`duplicate key ${JSON.stringify(dup.key)}`, { source, path: dup.path, line: this.lines.linePos(dup.offset).line });
      }
      const line = this.lines.linePos(first.pos[0]).line;
      const hint = looksLikeIni(text) ? ' (this looks like an INI inventory; vzsb reads the YAML inventory format only)' : '';
      throw new InventoryError(`invalid YAML: ${firstLine(first.message)}${hint}`, { source, line });
    }
  }

  get root(): Node | null {
    return this.deref(this.doc.contents as Node | null);
  }

  line(node: Node | Pair | null | undefined): number | undefined {
    if (!node) return undefined;
    const range = isPair(node) ? (node.key as Node | null)?.range : node.range;
    return range ? this.lines.linePos(range[0]).line : undefined;
  }

  /** Follow an alias to the node it names. */
  deref(node: Node | null | undefined): Node | null {
    if (node == null) return null;
    return isAlias(node) ? (node.resolve(this.doc) as Node | undefined) ?? null : node;
  }

  toJS(node: Node | null | undefined): unknown {
    const target = this.deref(node);
    if (target === null) return null;
    return target.toJS(this.doc, { maxAliasCount: 1000 });
  }

  /** A mapping key as a string (Ansible turns non-string keys into their text). */
  keyText(pair: Pair): string {
    const key = this.deref(pair.key as Node | null);
    if (key === null) return '';
    if (isScalar(key)) {
      const v = key.value;
      if (typeof v === 'boolean') return v ? 'True' : 'False';
      return String(v);
    }
    throw new InventoryError('expected a plain key, got a ' + (isMap(key) ? 'mapping' : isSeq(key) ? 'list' : 'node'), {
      source: this.source,
      line: this.line(key),
    });
  }
}

export function isNullNode(node: Node | null): boolean {
  return node === null || (isScalar(node) && node.value === null);
}

export function kindOf(node: Node | null): string {
  if (isNullNode(node)) return 'null';
  if (isMap(node)) return 'a mapping';
  if (isSeq(node)) return 'a list';
  if (isScalar(node)) {
    const v = node.value;
    return typeof v === 'string' ? JSON.stringify(v) : `${typeof v} ${String(v)}`;
  }
  return 'an unknown node';
}

export { isMap, isScalar, isSeq };

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

/** The repeated key the parser complained about: the first repeat at or after its offset. */
function findDuplicate(doc: Document.Parsed, offset: number): { key: string; path: string; offset: number } | undefined {
  let best: { key: string; path: string; offset: number } | undefined;
  const visit = (node: unknown, path: string): void => {
    if (isMap(node)) {
      const seen = new Set<string>();
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        const text = key && isScalar(key) ? String(key.value) : '';
        const start = key?.range?.[0];
        if (seen.has(text) && start !== undefined && start >= offset && (!best || start < best.offset)) {
          best = { key: text, path: childPath(path, text), offset: start };
        }
        seen.add(text);
        visit(pair.value, childPath(path, text));
      }
    } else if (isSeq(node)) {
      node.items.forEach((item, i) => visit(item, `${path}[${i}]`));
    }
  };
  visit(doc.contents, '');
  return best;
}

/**
 * Adjust YAML 1.1 to what PyYAML (and so Ansible) does: only yes/no, true/false, on/off are
 * booleans (not y/n); dates stay strings (PyYAML makes dates, which Ansible prints back as the
 * same text).
 */
export function pyyamlTags(tags: Tags): Tags {
  const dropped = new Set(['tag:yaml.org,2002:timestamp', 'tag:yaml.org,2002:bool']);
  const kept = tags.filter((t) => typeof t === 'string' ? t !== 'timestamp' && t !== 'bool' : !dropped.has(t.tag));
  return [...kept, boolTag(true, /^(?:yes|Yes|YES|true|True|TRUE|on|On|ON)$/), boolTag(false, /^(?:no|No|NO|false|False|FALSE|off|Off|OFF)$/), unsafeTag, vaultTag];
}

function boolTag(value: boolean, test: RegExp): ScalarTag {
  return {
    identify: (v: unknown) => v === value,
    default: true,
    tag: 'tag:yaml.org,2002:bool',
    test,
    resolve: () => value as unknown as string,
  };
}

/** `!unsafe` marks a string Ansible must not template; for an inventory it is just the string. */
const unsafeTag: ScalarTag = {
  tag: '!unsafe',
  resolve: (value: string) => value,
};

/**
 * `!vault` values stay encrypted; they are kept in the shape `ansible-inventory --list` prints
 * them in, so listing an inventory works without the vault password.
 */
const vaultTag: ScalarTag = {
  tag: '!vault',
  resolve: (value: string) => ({ __ansible_vault: value }) as unknown as string,
};

/** An INI inventory starts with a `[group]` line. */
export function looksLikeIni(text: string): boolean {
  const first = text.split('\n').find((l) => l.trim() !== '' && !/^\s*[#;]/.test(l));
  return first !== undefined && /^\s*\[[^\]]+\]\s*$/.test(first);
}
