import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import { runChecked, type Runner } from '../../common/exec.js';
import type { HostKey } from './types.js';

/** An ed25519 host key pair in OpenSSH formats, as sshd reads them from /etc/ssh. */
export interface HostKeyPair {
  privateKey: string;
  publicKey: string;
}

/**
 * A fresh ed25519 host key pair made by ssh-keygen on the host, so a clone never boots with
 * a key that another clone (or the base) has. `scratchDir` must be host-only (not inside
 * any container's root filesystem); the key files made there are removed before returning.
 */
export async function generateHostKey(runner: Runner, scratchDir: string, comment: string): Promise<HostKeyPair> {
  const dir = await mkdtemp(join(scratchDir, '.hostkey-'));
  try {
    const file = join(dir, 'key');
    await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {}, runner);
    const [privateKey, publicKey] = await Promise.all([readFile(file, 'utf8'), readFile(`${file}.pub`, 'utf8')]);
    return { privateKey, publicKey: publicKey.trim() };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** "SHA256:..." exactly as `ssh-keygen -lf` prints it: unpadded base64 of the key blob's SHA-256. */
export function fingerprint(publicKeyLine: string): string {
  const blob = keyBlob(publicKeyLine);
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The binary key blob of an OpenSSH public key line ("type base64 [comment]"). */
export function keyBlob(publicKeyLine: string): Buffer {
  const parts = publicKeyLine.trim().split(/\s+/);
  const [type, b64] = parts;
  if (!type || !b64 || !/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) {
    throw new VzsbError('E_INVALID', `not an OpenSSH public key line: ${JSON.stringify(publicKeyLine.slice(0, 40))}`);
  }
  const blob = Buffer.from(b64, 'base64');
  // The blob starts with its own type name; a mismatch means a corrupted or spliced line.
  const nameLength = blob.length >= 4 ? blob.readUInt32BE(0) : -1;
  if (nameLength < 0 || blob.subarray(4, 4 + nameLength).toString('latin1') !== type) {
    throw new VzsbError('E_INVALID', `public key blob does not match its type ${JSON.stringify(type)}`);
  }
  return blob;
}

export function hostKeyOf(publicKeyLine: string): HostKey {
  return { publicKey: publicKeyLine.trim(), fingerprint: fingerprint(publicKeyLine) };
}
