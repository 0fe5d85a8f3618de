import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { run, type Runner } from '../common/exec.js';
import { VzsbError } from '../common/errors.js';
import { labInventoryYaml } from './inventory.js';
import { createLab, readLab, type Lab, type LabEnv } from './lab.js';
import type { LabHostSpec } from './options.js';
import { generateKeyPair } from './ssh-keys.js';
import { SANDBOX_STUDENTS } from './students.js';

/** One host per role, two hypervisors (so failover can be tried); hypervisors run containers. */
export const SANDBOX_HOSTS: LabHostSpec[] = [
  { name: 'hyp1', nesting: true, groups: ['hypervisors'] },
  { name: 'hyp2', nesting: true, groups: ['hypervisors'] },
  { name: 'bal1', groups: ['balancers'] },
  { name: 'gw1', groups: ['gateways'] },
];

export { SANDBOX_STUDENTS };

export function studentKeyFile(lab: Lab): string {
  return join(lab.dir, 'student_ed25519');
}

export function inventoryFile(lab: Lab): string {
  return join(lab.dir, 'inventory.yaml');
}

/**
 * A lab with the hosts of a whole sandbox and an inventory ready for `vzsb deploy`: role
 * groups, a container network per hypervisor, and students (one key the lab made for all of
 * them, for `vzsb lab login`).
 */
export async function createSandboxLab(name: string, env: LabEnv = {}, runner: Runner = run): Promise<Lab> {
  const lab = await createLab({ name, hosts: SANDBOX_HOSTS }, env);
  await writeSandboxInventory(lab, runner);
  return lab;
}

export async function writeSandboxInventory(lab: Lab, runner: Runner = run): Promise<void> {
  const keyFile = studentKeyFile(lab);
  const publicKey = existsSync(`${keyFile}.pub`)
    ? (await readFile(`${keyFile}.pub`, 'utf8')).trim()
    : (await generateKeyPair(keyFile, `students@${lab.name}`, runner)).publicKey;
  const students = SANDBOX_STUDENTS.map((s) => ({ name: s, ssh_keys: [publicKey] }));
  await writeFile(inventoryFile(lab), labInventoryYaml(lab, { students }));
}

/** OpenSSH client arguments for a student's login through the lab's gateway (verified host key). */
export async function loginArgs(labName: string, user: string, command: readonly string[] = []): Promise<string[]> {
  const lab = await readLab(labName);
  if (!lab) throw new VzsbError('E_LAB_MISSING', `no lab ${labName} on this machine (vzsb lab up ${labName} --sandbox makes one)`);
  const gateway = lab.hosts.find((h) => h.groups?.includes('gateways'));
  if (!gateway) throw new VzsbError('E_LAB_NO_GATEWAY', `lab ${labName} has no gateway host (make it with --sandbox)`);
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(user)) throw new VzsbError('E_INVALID', `user: expected a Unix user name, got ${JSON.stringify(user)}`);
  return [
    '-F', 'none',
    '-i', studentKeyFile(lab),
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${lab.knownHostsFile}`,
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'LogLevel=ERROR',
    ...(command.length ? [] : ['-t']),
    '-p', String(gateway.port),
    `${user}@${gateway.address}`,
    ...command,
  ];
}
