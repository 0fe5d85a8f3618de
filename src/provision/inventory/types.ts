/** How the runner reaches a host; derived from the host's merged connection variables. */
export interface ConnectionSpec {
  kind: 'ssh' | 'local';
  /** ansible_host, default the inventory name */
  host: string;
  /** ansible_port, default 22 */
  port: number;
  /** ansible_user */
  user: string | undefined;
  /** ansible_ssh_private_key_file (or ansible_private_key_file), absolute: ~ expanded, relative to the inventory dir */
  privateKeyFile: string | undefined;
  /** ansible_become */
  become: boolean;
  /** ansible_become_user, default root */
  becomeUser: string;
}

/** Where a value was written: `file:line: dotted.path`. */
export interface VarOrigin {
  source: string;
  path: string;
  line: number | undefined;
}

export interface InventoryHost {
  name: string;
  /** Every group the host belongs to, directly or through a child group, without `all`; sorted as Ansible merges them. */
  groups: string[];
  /** Merged variables, Ansible's precedence applied. */
  vars: Record<string, unknown>;
  connection: ConnectionSpec;
  /** Where each merged variable's winning value was written. */
  varOrigins: Record<string, VarOrigin>;
  /** True only for the implicit localhost (a pattern named it and the inventory does not). */
  implicit: boolean;
}

export interface InventoryGroup {
  name: string;
  /** Direct child groups, in file order. */
  children: string[];
  /** Hosts listed directly in the group, in file order. */
  hosts: string[];
  /** The group's own variables: inventory-file vars, then its group_vars/ files. */
  vars: Record<string, unknown>;
  /** Longest path from `all` (all = 0): deeper groups win when variables are merged. */
  depth: number;
  /** ansible_group_priority (default 1): breaks ties between groups of the same depth. */
  priority: number;
  /** Direct parent groups. */
  parents: string[];
}

export interface Inventory {
  /** The file path. */
  source: string;
  /** Hosts in file order (first appearance). */
  hosts: Map<string, InventoryHost>;
  /** Groups in creation order; includes 'all' and 'ungrouped'. */
  groups: Map<string, InventoryGroup>;
  /**
   * The implicit localhost under each of its names (localhost, 127.0.0.1, ::1), with
   * ansible_connection local; empty when the inventory lists one of those names itself.
   * Host patterns reach it only by naming it, never through `all`.
   */
  implicitHosts: Map<string, InventoryHost>;
  /** Things Ansible accepts that are probably mistakes (e.g. a group_vars file naming no group). */
  warnings: string[];
  /** Directory that relative paths (group_vars/, host_vars/, key files) are resolved against. */
  baseDir: string;
  /** Home directory used to expand `~`. */
  homeDir: string;
}

/** The text of one group_vars/ or host_vars/ file (YAML or JSON). */
export interface VarsFile {
  source: string;
  text: string;
}

export interface ParseOptions {
  /** Shown in errors and kept as Inventory.source. */
  source: string;
  /** group name -> its group_vars files, in the order they are merged (later wins). */
  groupVars?: Record<string, VarsFile[]>;
  /** host name -> its host_vars files, in the order they are merged (later wins). */
  hostVars?: Record<string, VarsFile[]>;
  /** Default: the directory of `source`. */
  baseDir?: string;
  /** Default: os.homedir(). */
  homeDir?: string;
}
