import { createPrivateKey, createPublicKey, randomBytes } from 'node:crypto';
import { ed25519PublicRaw, ed25519SeedRaw, generateEd25519 } from '../daemons/common/ssh-key.js';

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
  const pub = Buffer.from(pair.publicKey.split(' ')[1]!, 'base64').subarray(-32);
  return { publicKey: pair.publicKey, fingerprint: pair.fingerprint, privateKey: opensshEd25519(ed25519SeedRaw(pair.privateKeyDer), pub, comment) };
}

/** An ed25519 private key in PKCS#8 PEM as OpenSSH's private key file (DER exports only, never JWK). */
export function toOpensshPrivateKey(pkcs8Pem: string, comment = ''): string {
  const key = createPrivateKey(pkcs8Pem);
  const seed = ed25519SeedRaw(key.export({ type: 'pkcs8', format: 'der' }));
  const pub = ed25519PublicRaw(createPublicKey(key).export({ type: 'spki', format: 'der' }));
  return opensshEd25519(seed, pub, comment);
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
