import test from 'ava';
import { createPrivateKey, createPublicKey, sign, verify } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/common/exec.js';
import { generateEd25519, parsePublicKey } from '../../src/daemons/common/ssh-key.js';
import { createSessionKey, toOpensshPrivateKey } from '../../src/shell/session-key.js';

const SRC = fileURLToPath(new URL('../../src/', import.meta.url));

test('generateEd25519: the OpenSSH line, the fingerprint and the PEM are one key pair', (t) => {
  const pair = generateEd25519('c');
  const parsed = parsePublicKey(pair.publicKey);
  if ('error' in parsed) return t.fail(parsed.error);
  t.is(parsed.fingerprint, pair.fingerprint);
  const priv = createPrivateKey(pair.privateKeyPem);
  const spki = createPublicKey(priv).export({ type: 'spki', format: 'der' });
  t.deepEqual(spki.subarray(12), parsed.blob.subarray(-32));
  const data = Buffer.from('hello');
  t.true(verify(null, data, createPublicKey(priv), sign(null, data, priv)));
  t.deepEqual(createPrivateKey({ key: pair.privateKeyDer, format: 'der', type: 'pkcs8' }).export({ type: 'pkcs8', format: 'der' }), pair.privateKeyDer);
});

test('the session key in OpenSSH format is the key of its public line (ssh-keygen -y agrees)', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-key-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const key of [createSessionKey('alice@gw'), (() => { const p = generateEd25519('x'); return { publicKey: p.publicKey, privateKey: toOpensshPrivateKey(p.privateKeyPem) }; })()]) {
    await writeFile(join(dir, 'k'), key.privateKey, { mode: 0o600 });
    const derived = await run('ssh-keygen', ['-y', '-f', join(dir, 'k')]);
    t.is(derived.exitCode, 0, derived.stderr);
    t.is(derived.stdout.trim().split(' ').slice(0, 2).join(' '), key.publicKey.split(' ').slice(0, 2).join(' '));
  }
});

test('no JWK export anywhere in src/ (it can deadlock Node after some thousands of ed25519 keys)', async (t) => {
  const offenders: string[] = [];
  const walk = async (dir: string): Promise<void> => {
    for (const e of await readdir(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) await walk(p);
      else if (e.name.endsWith('.ts') && /format:\s*['"]jwk['"]/.test(await readFile(p, 'utf8'))) offenders.push(p);
    }
  };
  await walk(SRC);
  t.deepEqual(offenders, []);
});
