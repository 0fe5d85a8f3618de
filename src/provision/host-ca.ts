import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import ssh2 from 'ssh2';
import { VzsbError } from '../common/errors.js';

/**
 * The sandbox host CA: an ed25519 key pair made on the first deploy and kept, like the API
 * tokens, in vzsb-secrets.yaml beside the inventory (as the secret `sandbox-host-ca`, the
 * private key in OpenSSH format). Hypervisors get the private key (0600 root, read by their
 * daemon) and sign each new container's host key with it; students get the public key, in
 * `sandbox-host-ca.pub` beside the inventory, as one `@cert-authority sandbox ...` line.
 */
export const HOST_CA_SECRET = 'sandbox-host-ca';
export const HOST_CA_PUBLIC_FILE = 'sandbox-host-ca.pub';
const COMMENT = 'vzsandbox host CA';

export function hostCaPublicFile(inventoryFile: string): string {
  return join(dirname(inventoryFile), HOST_CA_PUBLIC_FILE);
}

/** A new CA private key (what the secret store keeps). */
export function makeHostCaKey(): string {
  return ssh2.utils.generateKeyPairSync('ed25519', { comment: COMMENT }).private;
}

/** The public key line of a CA private key. */
export function hostCaPublicKey(privateKey: string): string {
  const parsed = ssh2.utils.parseKey(privateKey);
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  if (!key || key instanceof Error || !key.isPrivateKey()) {
    throw new VzsbError('E_SECRETS', `${HOST_CA_SECRET}: not an OpenSSH private key${key instanceof Error ? `: ${key.message}` : ''}`);
  }
  return `${key.type} ${key.getPublicSSH().toString('base64')} ${COMMENT}`;
}

/** Writes (or rewrites, when it differs or is missing) the public key file; 0644, replaced by rename. */
export function writeHostCaPublicFile(privateKey: string, file: string): void {
  const line = hostCaPublicKey(privateKey) + '\n';
  if (existsSync(file) && readFileSync(file, 'utf8') === line) return;
  const tmp = `${file}.tmp-${process.pid}`;
  writeFileSync(tmp, line, { mode: 0o644 });
  renameSync(tmp, file);
}
