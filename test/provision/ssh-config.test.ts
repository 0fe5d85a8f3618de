import test from 'ava';
import { createHmac, randomBytes } from 'node:crypto';
import { checkKnownHost, fingerprint, hostToken, keyTypeOf } from '../../src/provision/connectors/known-hosts.js';
import { parseSshConfig, resolveSshConfig } from '../../src/provision/connectors/ssh-config.js';

const config = `
Host bastion
  HostName 10.0.0.1
  User jump
Host hyp* !hyp99
  User admin
  Port 2222
  IdentityFile ~/.ssh/lab_ed25519
  ProxyJump bastion
Host *
  User fallback
  Port 22
`;

test('~/.ssh/config: first value wins, patterns and negation', (t) => {
  const blocks = parseSshConfig(config);
  const hyp = resolveSshConfig(blocks, 'hyp01');
  t.is(hyp.user, 'admin');
  t.is(hyp.port, 2222);
  t.is(hyp.proxyJump, 'bastion');
  t.regex(hyp.identityFiles[0]!, /\/\.ssh\/lab_ed25519$/);
  const excluded = resolveSshConfig(blocks, 'hyp99');
  t.is(excluded.user, 'fallback');
  t.is(excluded.port, 22);
  t.is(resolveSshConfig(blocks, 'bastion').hostName, '10.0.0.1');
});

// An ed25519 public key blob: string "ssh-ed25519" + 32 bytes.
const blob = (seed: number) => {
  const type = Buffer.from('ssh-ed25519');
  const key = Buffer.alloc(32, seed);
  const b = Buffer.alloc(4 + type.length + 4 + 32);
  b.writeUInt32BE(type.length, 0);
  type.copy(b, 4);
  b.writeUInt32BE(32, 4 + type.length);
  key.copy(b, 8 + type.length);
  return b;
};

test('known_hosts: plain, [host]:port, hashed, mismatch, revoked', (t) => {
  const k1 = blob(1);
  const k2 = blob(2);
  const salt = randomBytes(20);
  const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update('[10.9.9.9]:2222').digest('base64')}`;
  const text = [
    `10.1.1.1,web ssh-ed25519 ${k1.toString('base64')}`,
    `[10.1.1.2]:2200 ssh-ed25519 ${k1.toString('base64')}`,
    `${hashed} ssh-ed25519 ${k2.toString('base64')}`,
    `@revoked 10.1.1.3 ssh-ed25519 ${k2.toString('base64')}`,
  ].join('\n');
  t.is(checkKnownHost(text, 'web', 22, k1), 'match');
  t.is(checkKnownHost(text, '10.1.1.1', 22, k2), 'mismatch');
  t.is(checkKnownHost(text, '10.1.1.2', 2200, k1), 'match');
  t.is(checkKnownHost(text, '10.1.1.2', 22, k1), 'unknown', 'port matters');
  t.is(checkKnownHost(text, '10.9.9.9', 2222, k2), 'match');
  t.is(checkKnownHost(text, '10.1.1.3', 22, k2), 'revoked');
  t.is(hostToken('h', 22), 'h');
  t.is(keyTypeOf(k1), 'ssh-ed25519');
  t.regex(fingerprint(k1), /^SHA256:[A-Za-z0-9+/]{43}$/);
});
