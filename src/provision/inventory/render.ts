import type { Inventory } from './types.js';

/**
 * The output shapes of `ansible-inventory`: `--list` (groups with hosts/children plus
 * `_meta.hostvars`), `--host`, and `--graph`. `selected` (from --limit) keeps only those hosts;
 * groups left with neither hosts nor children are dropped, as ansible-inventory drops empty ones.
 */
export function inventoryList(inventory: Inventory, selected?: readonly string[]): Record<string, unknown> {
  const keep = selected ? new Set(selected) : undefined;
  const out: Record<string, unknown> = {};
  const seen = new Set<string>();
  const format = (name: string): void => {
    const group = inventory.groups.get(name)!;
    const entry: { hosts?: string[]; children?: string[] } = {};
    if (name !== 'all') {
      const hosts = group.hosts.filter((h) => !keep || keep.has(h));
      if (hosts.length) entry.hosts = hosts;
    }
    const children: string[] = [];
    for (const child of group.children) {
      if (!seen.has(child)) {
        seen.add(child);
        format(child);
      }
      if (!keep || child in out) children.push(child);
    }
    if (children.length) entry.children = children;
    if (Object.keys(entry).length) out[name] = entry;
  };
  format('all');
  const hostvars: Record<string, unknown> = {};
  for (const [name, host] of inventory.hosts) {
    if (keep && !keep.has(name)) continue;
    if (Object.keys(host.vars).length) hostvars[name] = host.vars;
  }
  return { _meta: { hostvars }, ...out };
}

/** `ansible-inventory --graph [GROUP]`. */
export function inventoryGraph(inventory: Inventory, top = 'all', selected?: readonly string[]): string {
  const keep = selected ? new Set(selected) : undefined;
  const lines: string[] = [];
  const line = (text: string, depth: number) => lines.push(depth ? `${'  |'.repeat(depth)}--${text}` : text);
  const hasSelected = (name: string): boolean => {
    const g = inventory.groups.get(name)!;
    return g.hosts.some((h) => keep!.has(h)) || g.children.some(hasSelected);
  };
  const visit = (name: string, depth: number): void => {
    const group = inventory.groups.get(name)!;
    line(`@${name}:`, depth);
    for (const child of group.children) if (!keep || hasSelected(child)) visit(child, depth + 1);
    if (name !== 'all') for (const h of group.hosts) if (!keep || keep.has(h)) line(h, depth + 1);
  };
  visit(top, 0);
  return lines.join('\n');
}

/** JSON text as ansible-inventory prints it: keys sorted at every level, four-space indent. */
export function ansibleJson(value: unknown): string {
  return JSON.stringify(sortKeys(value), null, 4);
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}
