import { createHash, createHmac } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname } from 'node:path';

/**
 * OpenSSH known_hosts: plain and hashed (|1|salt|hmac) host names, `[host]:port` for
 * non-standard ports, comma-separated names, `@revoked` markers. `@cert-authority` lines
 * are not supported (ignored).
 */
export type HostKeyVerdict = 'match' | 'mismatch' | 'unknown' | 'revoked';

export function hostToken(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function nameMatches(field: string, token: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (!salt || !hash) return false;
    const h = createHmac('sha1', Buffer.from(salt, 'base64')).update(token).digest('base64');
    return h === hash;
  }
  return field.split(',').some((n) => n === token);
}

export function checkKnownHost(text: string, host: string, port: number, keyBlob: Buffer): HostKeyVerdict {
  const token = hostToken(host, port);
  const blob = keyBlob.toString('base64');
  let seenHost = false;
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    let parts = line.split(/\s+/);
    let marker: string | undefined;
    if (parts[0]!.startsWith('@')) {
      marker = parts[0];
      parts = parts.slice(1);
    }
    if (marker === '@cert-authority') continue;
    const [names, , key] = parts;
    if (!names || !key || !nameMatches(names, token)) continue;
    if (marker === '@revoked') {
      if (key === blob) return 'revoked';
      continue;
    }
    if (key === blob) return 'match';
    seenHost = true;
  }
  return seenHost ? 'mismatch' : 'unknown';
}

export function readKnownHosts(files: readonly string[]): string {
  return files.filter((f) => existsSync(f)).map((f) => readFileSync(f, 'utf8')).join('\n');
}

export function appendKnownHost(file: string, host: string, port: number, keyType: string, keyBlob: Buffer): void {
  mkdirSync(dirname(file), { recursive: true, mode: 0o700 });
  appendFileSync(file, `${hostToken(host, port)} ${keyType} ${keyBlob.toString('base64')}\n`, { mode: 0o600 });
}

export function fingerprint(keyBlob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(keyBlob).digest('base64').replace(/=+$/, '');
}

/** The key type inside an SSH public key blob (string length-prefixed). */
export function keyTypeOf(keyBlob: Buffer): string {
  const len = keyBlob.readUInt32BE(0);
  return keyBlob.subarray(4, 4 + len).toString('ascii');
}
