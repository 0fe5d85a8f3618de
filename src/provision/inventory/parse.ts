import { homedir } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { Node, Pair } from 'yaml';
import { connectionFor, type ConnectionContext } from './connection.js';
import { InventoryError, childPath, collectErrors, prefix, throwCollected } from './errors.js';
import { expandHostRange, splitHostPort } from './host-range.js';
import type { Inventory, InventoryGroup, InventoryHost, ParseOptions, VarOrigin, VarsFile } from './types.js';
import { layerOrigins, layerValues, mergeLayers, readVarsFile, readVarsNode, type VarLayer } from './var-layer.js';
import { YamlSource, isMap, isNullNode, isScalar, isSeq, kindOf, looksLikeIni } from './yaml-source.js';

interface GroupDraft {
  name: string;
  children: string[];
  parents: string[];
  hosts: string[];
  hostSet: Set<string>;
  vars: VarLayer;
  priority: number;
}

interface HostDraft {
  name: string;
  direct: string[];
  vars: VarLayer;
}

/** Names Ansible treats as the local machine when the inventory does not list them. */
export const LOCALHOST_NAMES = ['localhost', '127.0.0.1', '::1'] as const;

/**
 * Parse an Ansible YAML inventory (pure: group_vars/host_vars file contents come in `options`).
 * Semantics follow Ansible's `yaml` inventory plugin and its variable precedence; where Ansible
 * only warns about something that is almost surely a mistake (unknown keys in a group, duplicate
 * keys, a hosts list instead of a mapping), this is an error naming file, line and dotted path.
 */
export function parseInventory(text: string, options: ParseOptions): Inventory {
  const src = new YamlSource(text, options.source);
  const builder = new InventoryBuilder(src);
  builder.readRoot();
  throwCollected(builder.errors);
  return builder.finish(options);
}

class InventoryBuilder {
  readonly groups = new Map<string, GroupDraft>();
  readonly hosts = new Map<string, HostDraft>();
  readonly warnings: string[] = [];
  /** Problems of the structure, collected so that every bad field is named at once. */
  readonly errors: InventoryError[] = [];

  constructor(private readonly src: YamlSource) {
    this.group('all');
    this.group('ungrouped');
    this.link('all', 'ungrouped', { source: src.source, path: '', line: undefined });
  }

  private where(path: string, node: Node | Pair | null | undefined): VarOrigin {
    return { source: this.src.source, path, line: this.src.line(node) };
  }

  readRoot(): void {
    const root = this.src.root;
    if (isNullNode(root)) throw new InventoryError('empty inventory: expected a mapping of groups such as `all:`', this.where('', root));
    if (!isMap(root)) {
      const hint = looksLikeIni(this.src.text) ? ' (this looks like an INI inventory; vzsb reads the YAML inventory format only)' : '';
      throw new InventoryError(`expected a mapping of groups such as \`all:\`, got ${kindOf(root)}${hint}`, this.where('', root));
    }
    if (root.items.some((pair) => this.src.keyText(pair) === 'plugin')) {
      const pair = root.items.find((p) => this.src.keyText(p) === 'plugin')!;
      throw new InventoryError('this is an inventory plugin configuration, not a YAML inventory', this.where('plugin', pair));
    }
    collectErrors(root.items, this.errors, (pair) => {
      const name = this.src.keyText(pair);
      this.readGroup(name, this.src.deref(pair.value as Node | null), name, pair);
    });
  }

  private group(name: string): GroupDraft {
    let g = this.groups.get(name);
    if (!g) {
      g = { name, children: [], parents: [], hosts: [], hostSet: new Set(), vars: new Map(), priority: 1 };
      this.groups.set(name, g);
    }
    return g;
  }

  private readGroup(name: string, node: Node | null, path: string, at: Pair | Node): void {
    if (name === '') throw new InventoryError('expected a group name, got an empty key', this.where(path, at));
    const group = this.group(name);
    if (isNullNode(node)) return;
    if (!isMap(node)) {
      throw new InventoryError(`expected a group (a mapping with hosts, children or vars, or nothing), got ${kindOf(node)}`, this.where(path, node));
    }
    collectErrors(node.items, this.errors, (pair) => {
      const key = this.src.keyText(pair);
      const value = this.src.deref(pair.value as Node | null);
      const keyPath = childPath(path, key);
      switch (key) {
        case 'vars':
          this.readGroupVars(group, value, keyPath);
          break;
        case 'children':
          for (const [child, childNode, childAt] of this.entries(value, keyPath, pair, 'child groups')) {
            const childPathText = childPath(keyPath, child);
            if (child === '') throw new InventoryError('expected a group name, got an empty key', this.where(childPathText, childAt));
            // Linked before its body is read, so a loop is reported where it closes.
            this.link(name, child, this.where(childPathText, childAt));
            this.readGroup(child, childNode, childPathText, childAt);
          }
          break;
        case 'hosts':
          collectErrors(this.entries(value, keyPath, pair, 'hosts'), this.errors, ([hostKey, hostNode, hostAt]) => {
            this.readHosts(group, hostKey, hostNode, childPath(keyPath, hostKey), hostAt);
          });
          break;
        default:
          throw new InventoryError(`unknown key "${key}": a group has only hosts, children and vars${unknownKeyHint(key, value)}`, this.where(keyPath, pair));
      }
    });
  }

  /** Entries of a `hosts:` or `children:` mapping. A single name as a string is accepted, as Ansible does. */
  private entries(node: Node | null, path: string, at: Pair, what: string): [string, Node | null, Pair | Node][] {
    if (isNullNode(node)) return [];
    if (isScalar(node) && typeof node.value === 'string') return [[node.value, null, node]];
    if (isSeq(node)) {
      throw new InventoryError(
        `expected a mapping of ${what} (each name followed by ":"), got a list; write "name:" on its own line instead of "- name"`,
        this.where(path, node),
      );
    }
    if (!isMap(node)) throw new InventoryError(`expected a mapping of ${what}, got ${kindOf(node)}`, this.where(path, node ?? at));
    return node.items.map((pair) => [this.src.keyText(pair), this.src.deref(pair.value as Node | null), pair]);
  }

  private readGroupVars(group: GroupDraft, node: Node | null, path: string): void {
    const layer = readVarsNode(this.src, node, path, 'group variables');
    const priority = layer.get('ansible_group_priority');
    if (priority) {
      // Like Ansible: a group attribute, not a variable, and only from the inventory file.
      layer.delete('ansible_group_priority');
      const v = priority.value;
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^\s*-?[0-9]+\s*$/.test(v) ? Number(v) : NaN;
      if (!Number.isInteger(n)) throw new InventoryError(`expected an integer, got ${JSON.stringify(v)}`, priority.origin);
      group.priority = n;
    }
    for (const [key, entry] of layer) group.vars.set(key, entry);
  }

  private readHosts(group: GroupDraft, key: string, node: Node | null, path: string, at: Pair | Node): void {
    const where = this.where(path, at);
    const { pattern, port } = splitHostPort(key);
    let names: string[];
    try {
      names = expandHostRange(pattern);
    } catch (err) {
      throw new InventoryError((err as Error).message, where);
    }
    if (names.some((n) => n === '')) throw new InventoryError('expected a host name, got an empty key', where);
    const vars = readVarsNode(this.src, node, path, 'host variables');
    if (port !== undefined && (!/^[0-9]+$/.test(port) || Number(port) < 1 || Number(port) > 65535)) {
      throw new InventoryError(`expected a port 1-65535 after ":", got ${JSON.stringify(port)}`, where);
    }
    for (const name of names) {
      let host = this.hosts.get(name);
      if (!host) {
        host = { name, direct: [], vars: new Map() };
        this.hosts.set(name, host);
        if (port !== undefined) host.vars.set('ansible_port', { value: Number(port), origin: where });
      } else if (port !== undefined) {
        // Ansible reads the port of `name:port` only where the host is first defined.
        this.warnings.push(`${prefix(where)}port ${port} ignored: host "${name}" was defined before (use ansible_port)`);
      }
      if (!group.hostSet.has(name)) {
        group.hostSet.add(name);
        group.hosts.push(name);
      }
      if (!host.direct.includes(group.name)) host.direct.push(group.name);
      for (const [k, entry] of vars) host.vars.set(k, entry);
    }
  }

  /** Make `child` a child group of `parent`, refusing loops (Ansible: "recursive dependency loop"). */
  private link(parent: string, child: string, where: VarOrigin): void {
    if (child === 'all') throw new InventoryError('group "all" cannot be a child of another group', where);
    const loop = this.pathBetween(child, parent);
    if (loop) {
      throw new InventoryError(`group "${child}" would be its own ancestor: ${[...loop, child].join(' -> ')}`, where);
    }
    const p = this.group(parent);
    const c = this.group(child);
    if (!p.children.includes(child)) p.children.push(child);
    if (!c.parents.includes(parent)) c.parents.push(parent);
  }

  /** A chain of child links from `from` down to `to`, if one exists (or [from] when equal). */
  private pathBetween(from: string, to: string, seen = new Set<string>()): string[] | undefined {
    if (from === to) return [from];
    if (seen.has(from)) return undefined;
    seen.add(from);
    for (const child of this.groups.get(from)?.children ?? []) {
      const rest = this.pathBetween(child, to, seen);
      if (rest) return [from, ...rest];
    }
    return undefined;
  }

  finish(options: ParseOptions): Inventory {
    const baseDir = options.baseDir ?? dirname(resolve(options.source));
    const ctx: ConnectionContext = { baseDir, homeDir: options.homeDir ?? homedir() };
    const where = { source: this.src.source, path: '', line: undefined };

    // Ansible's reconcile_inventory: top-level groups hang under all; hosts in no group but all are "ungrouped".
    for (const g of this.groups.values()) if (g.name !== 'all' && g.parents.length === 0) this.link('all', g.name, where);
    const ungrouped = this.group('ungrouped');
    for (const host of this.hosts.values()) {
      const others = host.direct.filter((g) => g !== 'all' && g !== 'ungrouped');
      if (others.length === 0 && !host.direct.includes('ungrouped')) {
        ungrouped.hostSet.add(host.name);
        ungrouped.hosts.push(host.name);
        host.direct.push('ungrouped');
      } else if (others.length > 0 && host.direct.includes('ungrouped')) {
        ungrouped.hostSet.delete(host.name);
        host.direct = host.direct.filter((g) => g !== 'ungrouped');
      }
    }
    const odd = [...this.groups.keys()].filter((g) => !/^[A-Za-z_][A-Za-z0-9_]*$/.test(g));
    if (odd.length) {
      this.warnings.push(`${this.src.source}: group names that Ansible warns about (use letters, digits and _ only): ${odd.join(', ')}`);
    }
    ungrouped.hosts = ungrouped.hosts.filter((h) => ungrouped.hostSet.has(h));
    for (const name of this.hosts.keys()) {
      if (this.groups.has(name)) this.warnings.push(`${this.src.source}: "${name}" is both a host and a group name`);
    }

    const depth = new Map<string, number>();
    const depthOf = (name: string): number => {
      if (name === 'all') return 0;
      let d = depth.get(name);
      if (d === undefined) {
        d = Math.max(0, ...this.groups.get(name)!.parents.map((p) => depthOf(p) + 1));
        depth.set(name, d);
      }
      return d;
    };

    const groupFiles = readFileLayers(options.groupVars, this.groups, 'group_vars', this.warnings);
    const hostFiles = readFileLayers(options.hostVars, this.hosts, 'host_vars', this.warnings, LOCALHOST_NAMES);

    const groups = new Map<string, InventoryGroup>();
    for (const g of this.groups.values()) {
      groups.set(g.name, {
        name: g.name,
        children: [...g.children],
        hosts: [...g.hosts],
        vars: layerValues(mergeLayers([g.vars, groupFiles.get(g.name) ?? new Map()])),
        depth: depthOf(g.name),
        priority: g.priority,
        parents: [...g.parents],
      });
    }

    const resolver = new VarsResolver(groups, this.groups, groupFiles, hostFiles, ctx);
    const hosts = new Map<string, InventoryHost>();
    const hostErrors: InventoryError[] = [];
    collectErrors(this.hosts.values(), hostErrors, (h) => hosts.set(h.name, resolver.host(h.name, h.direct, h.vars, false)));
    throwCollected(hostErrors);

    // Ansible's implicit localhost: only when no localhost name is in the inventory.
    const implicitHosts = new Map<string, InventoryHost>();
    if (!LOCALHOST_NAMES.some((n) => hosts.has(n))) {
      for (const n of LOCALHOST_NAMES) {
        const own: VarLayer = new Map([['ansible_connection', { value: 'local', origin: { source: '(implicit localhost)', path: 'ansible_connection', line: undefined } }]]);
        implicitHosts.set(n, resolver.host(n, [], own, true));
      }
    }
    return { source: this.src.source, hosts, groups, implicitHosts, warnings: this.warnings, baseDir, homeDir: ctx.homeDir };
  }
}

/**
 * Ansible's variable precedence for inventory variables, lowest first:
 *   `all` vars in the inventory file < other groups' vars in the inventory file (by depth, then
 *   ansible_group_priority, then name) < group_vars/all < group_vars/<group> (same order) <
 *   the host's vars in the inventory file < host_vars/<host>.
 */
export class VarsResolver {
  constructor(
    private readonly groups: Map<string, InventoryGroup>,
    private readonly drafts: Map<string, GroupDraft>,
    private readonly groupFiles: Map<string, VarLayer>,
    private readonly hostFiles: Map<string, VarLayer>,
    private readonly ctx: ConnectionContext,
  ) {}

  host(name: string, direct: string[], own: VarLayer, implicit: boolean): InventoryHost {
    const member = new Set<string>();
    const climb = (g: string): void => {
      if (g === 'all' || member.has(g)) return;
      member.add(g);
      for (const p of this.groups.get(g)?.parents ?? []) climb(p);
    };
    direct.forEach(climb);
    const sorted = [...member].map((g) => this.groups.get(g)!).sort(compareGroups).map((g) => g.name);
    const empty: VarLayer = new Map();
    const merged = mergeLayers([
      this.drafts.get('all')!.vars,
      ...sorted.map((g) => this.drafts.get(g)!.vars),
      this.groupFiles.get('all') ?? empty,
      ...sorted.map((g) => this.groupFiles.get(g) ?? empty),
      own,
      this.hostFiles.get(name) ?? empty,
    ]);
    return {
      name,
      groups: sorted,
      vars: layerValues(merged),
      varOrigins: layerOrigins(merged),
      connection: connectionFor(name, merged, this.ctx),
      implicit,
    };
  }
}

/** Ansible's sort_groups: depth, then priority, then name; later groups win. */
export function compareGroups(a: InventoryGroup, b: InventoryGroup): number {
  return a.depth - b.depth || a.priority - b.priority || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
}

function readFileLayers(
  files: Record<string, VarsFile[]> | undefined,
  known: Map<string, unknown>,
  dir: string,
  warnings: string[],
  alsoKnown: readonly string[] = [],
): Map<string, VarLayer> {
  const out = new Map<string, VarLayer>();
  for (const [name, list] of Object.entries(files ?? {})) {
    if (!known.has(name) && !alsoKnown.includes(name)) {
      const what = dir === 'group_vars' ? 'group' : 'host';
      warnings.push(`${list.map((f) => f.source).join(', ')}: no ${what} "${name}" in the inventory; ignored`);
      continue;
    }
    out.set(name, mergeLayers(list.map(readVarsFile)));
  }
  return out;
}


function unknownKeyHint(key: string, value: Node | null): string {
  const lower = key.toLowerCase();
  const near = ['hosts', 'children', 'vars'].find((k) => editDistance(lower, k) <= (lower.slice(0, 3) === k.slice(0, 3) ? 3 : 2));
  if (near) return ` (did you mean "${near}"?)`;
  return isMap(value) ? ` (to make "${key}" a child group, put it under children:)` : '';
}

function editDistance(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const cur = [i];
    for (let j = 1; j <= b.length; j++) cur[j] = Math.min(prev[j]! + 1, cur[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    prev = cur;
  }
  return prev[b.length]!;
}
