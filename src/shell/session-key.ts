import { createPrivateKey, randomBytes } from 'node:crypto';
import { generateEd25519 } from '../daemons/common/ssh-key.js';

/**
 * The one-time ed25519 key of a login session. It lives only in this process's memory: the
 * public half goes to the balancer with the lease request, the private half to ssh2, which
 * reads OpenSSH's own private key format (not PKCS#8), so it is re-encoded here.
 */
export interface SessionKey {
  publicKey: string;
  fingerprint: string;
  /** "-----BEGIN OPENSSH PRIVATE KEY-----" text, unencrypted. */
  privateKey: string;
}

export function createSessionKey(comment: string): SessionKey {
  const pair = generateEd25519(comment);
  return { publicKey: pair.publicKey, fingerprint: pair.fingerprint, privateKey: toOpensshPrivateKey(pair.privateKeyPem, comment) };
}

/** An ed25519 private key in PKCS#8 PEM (what generateEd25519 gives) as OpenSSH's private key file. */
export function toOpensshPrivateKey(pkcs8Pem: string, comment = ''): string {
  const jwk = createPrivateKey(pkcs8Pem).export({ format: 'jwk' });
  return opensshEd25519(Buffer.from(jwk.d as string, 'base64url'), Buffer.from(jwk.x as string, 'base64url'), comment);
}

/** PROTOCOL.key of OpenSSH: "openssh-key-v1", no cipher, one key, padded to the 8-byte block. */
export function opensshEd25519(seed: Buffer, pub: Buffer, comment: string): string {
  const type = Buffer.from('ssh-ed25519');
  const publicBlob = Buffer.concat([str(type), str(pub)]);
  const check = randomBytes(4);
  let secret = Buffer.concat([check, check, str(type), str(pub), str(Buffer.concat([seed, pub])), str(Buffer.from(comment))]);
  const pad = (8 - (secret.length % 8)) % 8;
  secret = Buffer.concat([secret, Buffer.from(Array.from({ length: pad }, (_, i) => i + 1))]);
  const body = Buffer.concat([
    Buffer.from('openssh-key-v1\0'),
    str(Buffer.from('none')),
    str(Buffer.from('none')),
    str(Buffer.alloc(0)),
    u32(1),
    str(publicBlob),
    str(secret),
  ]);
  const b64 = body.toString('base64').replace(/.{1,70}/g, '$&\n');
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}-----END OPENSSH PRIVATE KEY-----\n`;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

function str(data: Buffer): Buffer {
  return Buffer.concat([u32(data.length), data]);
}
