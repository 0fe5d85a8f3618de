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
  type YAMLMap,
} from 'yaml';
import { InventoryError } from './errors.js';

/**
 * A parsed YAML (or JSON) file that still knows where each node came from, so that errors can
 * name `file:line`. Parsed as YAML 1.1 like Ansible (PyYAML): `yes`/`no`/`on`/`off` are booleans,
 * `<<` merge keys work. Duplicate keys are an error (Ansible only warns and keeps the last).
 */
export class YamlSource {
  readonly source: string;
  readonly doc: Document.Parsed;
  private readonly lines: LineCounter;

  constructor(text: string, source: string) {
    this.source = source;
    this.lines = new LineCounter();
    this.doc = parseDocument(text, {
      version: '1.1',
      merge: true,
      uniqueKeys: true,
      prettyErrors: false,
      lineCounter: this.lines,
      // Dates stay strings (PyYAML makes them dates, which Ansible prints back as the same text).
      customTags: (tags) => [...tags.filter((t) => t !== 'timestamp' && (typeof t === 'string' || t.tag !== 'tag:yaml.org,2002:timestamp')), unsafeTag, vaultTag],
    });
    const first = this.doc.errors[0];
    if (first) {
      const line = this.lines.linePos(first.pos[0]).line;
      const dup = /Map keys must be unique/.test(first.message);
      const text = dup ? `duplicate key ${quoteKeyAt(this.doc, first.pos[0])}` : firstLine(first.message);
      throw new InventoryError(`invalid YAML: ${text}`, { source, line });
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

export type { YAMLMap };
export { isMap, isScalar, isSeq };

function firstLine(message: string): string {
  return message.split('\n')[0]!.replace(/ at line \d+, column \d+:?$/, '');
}

function quoteKeyAt(doc: Document.Parsed, offset: number): string {
  // The error points at the repeated key; read its text for the message.
  let found = '';
  const visit = (node: unknown): void => {
    if (found || !node || typeof node !== 'object') return;
    if (isMap(node)) {
      for (const pair of node.items) {
        const key = pair.key as Node | null;
        if (key && isScalar(key) && key.range && key.range[0] === offset) {
          found = JSON.stringify(String(key.value));
          return;
        }
        visit(pair.value);
      }
    } else if (isSeq(node)) {
      for (const item of node.items) visit(item);
    }
  };
  visit(doc.contents);
  return found || '(repeated)';
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
