import { readFile } from 'node:fs/promises';
import { VzsbError } from '../common/errors.js';

/**
 * What a student pastes into ~/.ssh/config and ~/.ssh/known_hosts to reach their sandbox with
 * their own OpenSSH client (and everything built on it: VS Code Remote-SSH, scp, rsync, -L, -A):
 * a `Host sandbox` whose ProxyCommand is the gateway's tunnel subsystem, and the sandbox host
 * CA as the one key that vouches for every container (HostKeyAlias sandbox = the certificates'
 * principal), so a reset never shows a changed-key warning.
 */
export interface StudentSshConfig {
  student: string;
  /** How the student reaches the gateway: its address or name, and sshd's port. */
  gateway: { host: string; port: number };
  /** The CA's public key line (sandbox-host-ca.pub). */
  caPublicKey: string;
  /** The Host name the student types, and the principal in the containers' certificates. */
  alias: string;
  /** The student's key, when not one ssh finds by itself. */
  identityFile?: string | undefined;
}

/** The principal of every container's host certificate (the hypervisors' hostCa default). */
export const SANDBOX_ALIAS = 'sandbox';

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const HOST = /^[A-Za-z0-9._:-]{1,253}$/;
const WORD = /^[A-Za-z0-9._~/+@-]{1,1024}$/;

export function renderStudentSshConfig(c: StudentSshConfig): string {
  if (!NAME.test(c.student)) throw new VzsbError('E_INVALID', `student: expected a Unix user name, got ${JSON.stringify(c.student)}`);
  if (!HOST.test(c.gateway.host)) throw new VzsbError('E_INVALID', `gateway: expected a host name or address, got ${JSON.stringify(c.gateway.host)}`);
  if (!HOST.test(c.alias)) throw new VzsbError('E_INVALID', `alias: expected a host name, got ${JSON.stringify(c.alias)}`);
  if (c.identityFile !== undefined && !WORD.test(c.identityFile)) throw new VzsbError('E_INVALID', `identity file: expected a path of plain characters, got ${JSON.stringify(c.identityFile)}`);
  const ca = c.caPublicKey.trim();
  if (!/^ssh-[a-z0-9-]+ [A-Za-z0-9+/]+={0,2}( [^\r\n]*)?$/.test(ca)) throw new VzsbError('E_INVALID', 'the host CA public key is not one OpenSSH public key line');
  const gw = c.gateway.host.includes(':') ? `[${c.gateway.host}]` : c.gateway.host;
  const identity = c.identityFile ? ` -i ${c.identityFile}` : '';
  return [
    `# ~/.ssh/config: ${c.student}'s sandbox through the gateway ${c.gateway.host} (vzsb ssh-config)`,
    `Host ${c.alias}`,
    `    User root`,
    `    HostKeyAlias ${c.alias}`,
    // -T: no terminal on the gateway; the inner ssh forwards nothing itself (the outer one does, in the sandbox).
    `    ProxyCommand ssh -T -o ForwardAgent=no -o ForwardX11=no -o ClearAllForwardings=yes${identity} -p ${c.gateway.port} -s ${c.student}@${gw} vzsb-tunnel`,
    ...(c.identityFile ? [`    IdentityFile ${c.identityFile}`] : []),
    // Every sandbox is vouched for by the CA below; a reset brings a new key with a new certificate.
    `    StrictHostKeyChecking yes`,
    `    ServerAliveInterval 30`,
    '',
    '# ~/.ssh/known_hosts: this one line trusts every sandbox, before and after a reset',
    `@cert-authority ${c.alias} ${ca}`,
    '',
  ].join('\n');
}

/** The pieces of `vzsb ssh-config -i INVENTORY STUDENT`, read from the inventory and the CA's public file beside it. */
export async function studentSshConfigFromInventory(options: {
  inventory: string;
  student: string;
  gateway?: string | undefined;
  identityFile?: string | undefined;
}): Promise<string> {
  const { loadInventory, groupHosts } = await import('../provision/inventory/index.js');
  const { hostCaPublicFile } = await import('../provision/host-ca.js');
  const inventory = await loadInventory(options.inventory);
  if (!inventory.groups.has('gateways')) throw new VzsbError('E_CONFIG', `${options.inventory}: no group "gateways"`);
  const gateways = groupHosts(inventory, 'gateways').map((n) => inventory.hosts.get(n)!);
  const gateway = options.gateway === undefined ? gateways[0] : gateways.find((h) => h.name === options.gateway);
  if (!gateway) {
    throw new VzsbError('E_CONFIG', options.gateway === undefined ? `${options.inventory}: the group "gateways" has no hosts` : `${options.inventory}: no gateway "${options.gateway}" (one of ${gateways.map((h) => h.name).join(', ')})`);
  }
  const students = Array.isArray(gateway.vars.students) ? (gateway.vars.students as Array<{ name?: unknown }>) : [];
  if (!students.some((s) => s?.name === options.student)) {
    throw new VzsbError('E_CONFIG', `${options.inventory}: no student "${options.student}" in the students of gateway ${gateway.name}`);
  }
  const caFile = hostCaPublicFile(inventory.source);
  const caPublicKey = await readFile(caFile, 'utf8').catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new VzsbError('E_CONFIG', `${caFile} does not exist: deploy the inventory first (vzsb deploy ${options.inventory})`);
    throw err;
  });
  return renderStudentSshConfig({
    student: options.student,
    gateway: { host: String(gateway.vars.gateway_public_address ?? gateway.connection.host), port: Number(gateway.vars.gateway_public_port ?? gateway.connection.port) },
    caPublicKey,
    alias: SANDBOX_ALIAS,
    identityFile: options.identityFile,
  });
}
