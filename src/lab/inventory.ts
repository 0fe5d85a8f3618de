import { stringify } from 'yaml';
import type { Lab } from './lab.js';

/**
 * An Ansible-style YAML inventory of a lab's hosts, for `vzsb deploy` and
 * `ansible-playbook -i`: every host in group `lab` (with its address), each also in the
 * groups it was made with, the lab's key, and OpenSSH options that verify host keys
 * against the lab's known_hosts only.
 */
export interface LabInventoryOptions {
  /** Student accounts for the gateways (the gateway role's `students`). */
  students?: Array<{ name: string; ssh_keys: string[] }>;
}

export function labInventoryYaml(lab: Lab, options: LabInventoryOptions = {}): string {
  const hosts = Object.fromEntries(lab.hosts.map((h) => [h.name, { ansible_host: h.address, ansible_port: h.port }]));
  const children: Record<string, { hosts: Record<string, object | null>; vars?: Record<string, unknown> }> = { lab: { hosts } };
  let hypervisors = 0;
  for (const h of lab.hosts) {
    for (const g of h.groups ?? []) {
      // Each hypervisor's containers get their own network, only inside that host; the
      // gateways reach it through the hypervisor's lab address. Lab hosts share this
      // machine's kernel, so each hypervisor also gets its own block of container ids
      // (separate machines may all use the default block).
      const n = g === 'hypervisors' ? ++hypervisors : 0;
      const vars = n ? { container_subnet: `10.250.${n}.0/24`, container_idmap_start: 1_000_000_000 + (n - 1) * 16_777_216 } : null;
      (children[g] ??= { hosts: {} }).hosts[h.name] = vars;
    }
  }
  if (options.students && children.gateways) children.gateways.vars = { students: options.students };
  const inventory = {
    all: {
      vars: {
        ansible_user: 'root',
        ansible_ssh_private_key_file: lab.keyFile,
        ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.knownHostsFile} -o StrictHostKeyChecking=yes`,
        // this machine, on the lab's bridge: it runs vzsb pools and vzsb sessions
        admin_sources: [lab.gateway],
      },
      children,
    },
  };
  return `# lab ${lab.name} (${lab.subnet}); the non-root user "admin" has passwordless sudo\n${stringify(inventory, { lineWidth: 0 })}`;
}
