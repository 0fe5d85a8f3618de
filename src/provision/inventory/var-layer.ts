import type { Node } from 'yaml';
import { InventoryError, childPath, expected } from './errors.js';
import type { VarOrigin, VarsFile } from './types.js';
import { YamlSource, isMap, isNullNode, kindOf } from './yaml-source.js';

export interface VarEntry {
  value: unknown;
  origin: VarOrigin;
}

/** Variables of one scope (a group, a host, one vars file), each with where it was written. */
export type VarLayer = Map<string, VarEntry>;

/**
 * Read a `vars:` mapping (or a host's mapping) into a layer. Merge keys (`<<`) are resolved;
 * each variable keeps the line of its own key.
 */
export function readVarsNode(src: YamlSource, node: Node | null, path: string, what: string): VarLayer {
  const layer: VarLayer = new Map();
  const target = src.deref(node);
  if (isNullNode(target)) return layer;
  if (!isMap(target)) {
    throw new InventoryError(`expected ${what} (a mapping of names to values), got ${kindOf(target)}`, {
      source: src.source,
      path,
      line: src.line(target),
    });
  }
  const lines = new Map<string, number | undefined>();
  for (const pair of target.items) lines.set(src.keyText(pair), src.line(pair));
  const values = src.toJS(target) as Record<string, unknown>;
  for (const [key, value] of Object.entries(values)) {
    layer.set(key, { value, origin: { source: src.source, path: childPath(path, key), line: lines.get(key) ?? src.line(target) } });
  }
  return layer;
}

/** One group_vars/ or host_vars/ file. An empty file is an empty layer, as in Ansible. */
export function readVarsFile(file: VarsFile): VarLayer {
  const src = new YamlSource(file.text, file.source);
  const root = src.root;
  if (root !== null && !isMap(root) && !isNullNode(root)) {
    throw expected({ source: file.source, line: src.line(root) }, 'a mapping of variable names to values', src.toJS(root));
  }
  return readVarsNode(src, root, '', 'variables');
}

/** Later layers win, key by key (Ansible's default `hash_behaviour: replace`). */
export function mergeLayers(layers: Iterable<VarLayer>): VarLayer {
  const out: VarLayer = new Map();
  for (const layer of layers) for (const [key, entry] of layer) out.set(key, entry);
  return out;
}

export function layerValues(layer: VarLayer): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, entry] of layer) out[key] = entry.value;
  return out;
}

export function layerOrigins(layer: VarLayer): Record<string, VarOrigin> {
  const out: Record<string, VarOrigin> = {};
  for (const [key, entry] of layer) out[key] = entry.origin;
  return out;
}
