import { stringify } from 'yaml';
import type { Lab } from './lab.js';

/**
 * An Ansible-style YAML inventory of a lab's hosts, for `vzsb deploy` and
 * `ansible-playbook -i`: every host in group `lab` (with its address), each also in the
 * groups it was made with, the lab's key, and OpenSSH options that verify host keys
 * against the lab's known_hosts only.
 */
export function labInventoryYaml(lab: Lab): string {
  const hosts = Object.fromEntries(lab.hosts.map((h) => [h.name, { ansible_host: h.address, ansible_port: h.port }]));
  const children: Record<string, { hosts: Record<string, object | null> }> = { lab: { hosts } };
  for (const h of lab.hosts) {
    for (const g of h.groups ?? []) (children[g] ??= { hosts: {} }).hosts[h.name] = null;
  }
  const inventory = {
    all: {
      vars: {
        ansible_user: 'root',
        ansible_ssh_private_key_file: lab.keyFile,
        ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.knownHostsFile} -o StrictHostKeyChecking=yes`,
      },
      children,
    },
  };
  return `# lab ${lab.name} (${lab.subnet}); the non-root user "admin" has passwordless sudo\n${stringify(inventory, { lineWidth: 0 })}`;
}
