import { dirname, join } from 'node:path';
import { packageRoot } from '../common/paths.js';
import { connectLocal } from './connectors/local.js';
import { connectSsh, type SshOptions } from './connectors/ssh.js';
import type { Connection } from './connectors/types.js';
import { loadInventory, selectHosts, splitPattern } from './inventory/index.js';
import type { Inventory } from './inventory/types.js';
import type { InventoryHost } from './inventory/types.js';
import { operations } from './operations/index.js';
import { loadPlaybook } from './playbook/load.js';
import { runPlaybook, type Reporter, type RunResult } from './runner.js';
import { createTemplating } from './templating.js';
import { HOST_CA_SECRET, hostCaPublicFile, makeHostCaKey, writeHostCaPublicFile } from './host-ca.js';
import { SecretStore, maskingReporter } from './secrets.js';

export interface DeployOptions {
  inventory: string;
  playbook?: string;
  limit?: string;
  tags?: string[];
  skipTags?: string[];
  check?: boolean;
  diff?: boolean;
  forks?: number;
  extraVars?: Record<string, unknown>;
  ssh?: SshOptions;
  reporter: Reporter;
  warn?: (message: string) => void;
  /** Default: vzsb-secrets.yaml beside the inventory. */
  secretsFile?: string;
}

export function defaultPlaybook(): string {
  return join(packageRoot(), 'playbooks', 'site.yaml');
}

export function connectorFor(ssh: SshOptions = {}) {
  return (host: InventoryHost): Promise<Connection> => {
    if (host.connection.kind === 'local') return Promise.resolve(connectLocal(host.name));
    const extra = sshArgsOptions(host.vars.ansible_ssh_common_args, host.vars.ansible_ssh_extra_args);
    return connectSsh(
      { name: host.name, host: host.connection.host, port: host.connection.port, user: host.connection.user, privateKeyFile: host.connection.privateKeyFile },
      {
        ...ssh,
        knownHostsFiles: [...(ssh.knownHostsFiles ?? []), ...extra.knownHostsFiles],
        ...(extra.acceptNew ? { acceptNewHostKeys: true } : {}),
      },
    );
  };
}

/**
 * The OpenSSH options of ansible_ssh_common_args / ansible_ssh_extra_args that vzsb honours:
 * `-o UserKnownHostsFile=FILE` and `-o StrictHostKeyChecking=accept-new`. Others are ignored.
 */
export function sshArgsOptions(...values: unknown[]): { knownHostsFiles: string[]; acceptNew: boolean } {
  const out = { knownHostsFiles: [] as string[], acceptNew: false };
  for (const value of values) {
    if (typeof value !== 'string') continue;
    for (const m of value.matchAll(/-o\s*([A-Za-z]+)[= ]\s*("[^"]*"|\S+)/g)) {
      const key = m[1]!.toLowerCase();
      const v = m[2]!.replace(/^"|"$/g, '');
      if (key === 'userknownhostsfile') out.knownHostsFiles.push(...v.split(/\s+/).filter((f) => f !== '/dev/null'));
      if (key === 'stricthostkeychecking' && v.toLowerCase() === 'accept-new') out.acceptNew = true;
    }
  }
  return out;
}

/** `vzsb deploy`: load, validate, run. Throws only for bad input; host failures are in the result. */
export async function deploy(options: DeployOptions): Promise<RunResult> {
  const inventory = await loadInventory(options.inventory);
  const playbook = await loadPlaybook(options.playbook ?? defaultPlaybook(), { modules: new Set(operations.keys()) });
  const limit = options.limit ? selectHosts(inventory, options.limit) : undefined;
  const secrets = new SecretStore(options.secretsFile ?? join(dirname(inventory.source), 'vzsb-secrets.yaml'), { [HOST_CA_SECRET]: makeHostCaKey });
  // Whoever asks for the host CA (the hypervisors' play) also leaves its public half for students.
  const secret = (name: string) => {
    const value = secrets.get(name);
    if (name === HOST_CA_SECRET) writeHostCaPublicFile(value, hostCaPublicFile(inventory.source));
    return value;
  };
  return runPlaybook({
    inventory,
    plays: playbook.plays,
    selectHosts: (pattern) => playHosts(inventory, pattern, options.warn ?? (() => {})),
    ...(limit ? { limit } : {}),
    tags: options.tags ?? [],
    skipTags: options.skipTags ?? [],
    check: !!options.check,
    diff: !!options.diff,
    forks: options.forks ?? 10,
    extraVars: options.extraVars ?? {},
    connect: connectorFor(options.ssh),
    reporter: maskingReporter(options.reporter, () => secrets.values()),
    compile: { templating: createTemplating({ secret }), templateDirs: [join(packageRoot(), 'templates')] },
  });
}

/**
 * Hosts of a play. As in Ansible, a term of a play's `hosts:` that matches nothing is skipped
 * with a warning (site.yaml has plays for roles an inventory may not use); --limit stays strict.
 */
export function playHosts(inventory: Inventory, pattern: string, warn: (message: string) => void): string[] {
  try {
    return selectHosts(inventory, pattern);
  } catch {
    const known = splitPattern(pattern).filter((term) => {
      try {
        selectHosts(inventory, term.replace(/^[!&]/, ''));
        return true;
      } catch {
        warn(`${inventory.source}: the play pattern term "${term}" matches no host or group; skipped`);
        return false;
      }
    });
    return known.some((t) => !/^[!&]/.test(t)) ? selectHosts(inventory, known.join(',')) : [];
  }
}
