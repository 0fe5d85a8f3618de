import { stringify } from 'yaml';
import type { Lab } from './lab.js';

/**
 * An Ansible-style YAML inventory of a lab's hosts, for `vzsb deploy` and
 * `ansible-playbook -i`: one group (default `lab`), the lab's key, and OpenSSH options that
 * verify host keys against the lab's known_hosts only.
 */
export function labInventoryYaml(lab: Lab, group = 'lab'): string {
  const hosts = Object.fromEntries(lab.hosts.map((h) => [h.name, { ansible_host: h.address, ansible_port: h.port }]));
  const inventory = {
    all: {
      vars: {
        ansible_user: 'root',
        ansible_ssh_private_key_file: lab.keyFile,
        ansible_ssh_common_args: `-o UserKnownHostsFile=${lab.knownHostsFile} -o StrictHostKeyChecking=yes`,
      },
      children: { [group]: { hosts } },
    },
  };
  return `# lab ${lab.name} (${lab.subnet}); the non-root user "admin" has passwordless sudo\n${stringify(inventory, { lineWidth: 0 })}`;
}
