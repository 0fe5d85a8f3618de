import { readFile, rm } from 'node:fs/promises';
import { runChecked, type Runner } from '../common/exec.js';

export interface KeyPair {
  privateKeyFile: string;
  publicKey: string;
}

/** A new ed25519 key pair without passphrase at `file` (and `file`.pub). */
export async function generateKeyPair(file: string, comment: string, runner: Runner): Promise<KeyPair> {
  await rm(file, { force: true });
  await rm(`${file}.pub`, { force: true });
  await runChecked('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-C', comment, '-f', file], {}, runner);
  return { privateKeyFile: file, publicKey: (await readFile(`${file}.pub`, 'utf8')).trim() };
}

/**
 * known_hosts lines for hosts whose keys the lab generated itself, so that clients verify
 * with StrictHostKeyChecking=yes and never trust on first use. OpenSSH writes a host on a
 * port other than 22 as "[addr]:port".
 */
export function knownHostsLine(names: readonly string[], port: number, publicKey: string): string {
  const [type, key] = publicKey.split(/\s+/);
  const patterns = names.map((n) => (port === 22 ? n : `[${n}]:${port}`));
  return `${patterns.join(',')} ${type} ${key}`;
}
