import { createHash, generateKeyPairSync } from 'node:crypto';

/**
 * OpenSSH public key lines ("ssh-ed25519 AAAA... comment"): strict parsing of the key types a
 * gateway may send, and the SHA256 fingerprint as `ssh-keygen -lf` prints it.
 */
export interface PublicKeyInfo {
  type: string;
  blob: Buffer;
  fingerprint: string;
}

const ECDSA_CURVES: Record<string, { curve: string; pointBytes: number }> = {
  'ecdsa-sha2-nistp256': { curve: 'nistp256', pointBytes: 65 },
  'ecdsa-sha2-nistp384': { curve: 'nistp384', pointBytes: 97 },
  'ecdsa-sha2-nistp521': { curve: 'nistp521', pointBytes: 133 },
};
const MIN_RSA_BITS = 2048;

/** Returns the parsed key, or a reason (for a validation message) why the line is not acceptable. */
export function parsePublicKey(line: string): PublicKeyInfo | { error: string } {
  if (line.length > 16384) return { error: 'an OpenSSH public key line (too long)' };
  if (/[\r\n\0]/.test(line)) return { error: 'a single OpenSSH public key line' };
  const parts = line.trim().split(/\s+/);
  if (parts.length < 2) return { error: 'an OpenSSH public key line "<type> <base64> [comment]"' };
  const [type, b64] = parts as [string, string];
  if (type !== 'ssh-ed25519' && type !== 'ssh-rsa' && !(type in ECDSA_CURVES)) {
    return { error: 'a key type of ssh-ed25519, ecdsa-sha2-nistp256/384/521 or ssh-rsa' };
  }
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return { error: 'base64 key data' };
  const blob = Buffer.from(b64, 'base64');
  const fields = readStrings(blob);
  if (!fields || fields[0]?.toString('latin1') !== type) return { error: `key data that encodes a ${type} key` };
  const bad = checkFields(type, fields);
  if (bad) return { error: bad };
  return { type, blob, fingerprint: fingerprintOf(blob) };
}

export function fingerprintOf(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/**
 * A fresh ed25519 key pair: the public half as an OpenSSH line, the private half as PKCS#8 PEM
 * (and DER). Only DER exports: on Node 18 and 20 a JWK export of many ed25519 keys can deadlock
 * inside Node (ExportJWKEdKey during GC), which would freeze the gateway's session agent. The
 * raw key is the last 32 bytes of the SPKI DER (the private seed the last 32 of the PKCS#8 DER).
 */
export function generateEd25519(comment = ''): { publicKey: string; privateKeyPem: string; privateKeyDer: Buffer; fingerprint: string } {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = ed25519PublicRaw(publicKey.export({ type: 'spki', format: 'der' }));
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  const blob = Buffer.concat([sshString(Buffer.from('ssh-ed25519')), sshString(raw)]);
  const line = `ssh-ed25519 ${blob.toString('base64')}${comment ? ' ' + comment : ''}`;
  return { publicKey: line, privateKeyPem: pem('PRIVATE KEY', der), privateKeyDer: der, fingerprint: fingerprintOf(blob) };
}

/** SPKI DER of an ed25519 key (RFC 8410: a fixed 12-byte header, then the 32-byte key). */
export function ed25519PublicRaw(spkiDer: Buffer): Buffer {
  if (spkiDer.length !== 44) throw new Error(`expected a 44-byte ed25519 SPKI, got ${spkiDer.length} bytes`);
  return spkiDer.subarray(12);
}

/** PKCS#8 DER of an ed25519 key (RFC 8410: a fixed 16-byte header, then the 32-byte seed). */
export function ed25519SeedRaw(pkcs8Der: Buffer): Buffer {
  if (pkcs8Der.length !== 48) throw new Error(`expected a 48-byte ed25519 PKCS#8, got ${pkcs8Der.length} bytes`);
  return pkcs8Der.subarray(16);
}

function pem(label: string, der: Buffer): string {
  return `-----BEGIN ${label}-----\n${der.toString('base64').replace(/.{1,64}/g, '$&\n')}-----END ${label}-----\n`;
}

function sshString(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeUInt32BE(data.length);
  return Buffer.concat([len, data]);
}

function readStrings(blob: Buffer): Buffer[] | undefined {
  const out: Buffer[] = [];
  let off = 0;
  while (off < blob.length) {
    if (off + 4 > blob.length) return undefined;
    const len = blob.readUInt32BE(off);
    off += 4;
    if (off + len > blob.length) return undefined;
    out.push(blob.subarray(off, off + len));
    off += len;
  }
  return out;
}

function checkFields(type: string, f: Buffer[]): string | undefined {
  if (type === 'ssh-ed25519') return f.length === 2 && f[1]!.length === 32 ? undefined : 'a 32-byte ed25519 key';
  if (type === 'ssh-rsa') {
    if (f.length !== 3) return 'an RSA key with exponent and modulus';
    const n = f[2]!;
    const bits = (n.length - (n[0] === 0 ? 1 : 0)) * 8;
    return bits >= MIN_RSA_BITS ? undefined : `an RSA key of at least ${MIN_RSA_BITS} bits`;
  }
  const curve = ECDSA_CURVES[type]!;
  if (f.length !== 3 || f[1]!.toString('latin1') !== curve.curve) return `an ECDSA key on ${curve.curve}`;
  return f[2]!.length === curve.pointBytes && f[2]![0] === 4 ? undefined : `an uncompressed ${curve.curve} point`;
}
