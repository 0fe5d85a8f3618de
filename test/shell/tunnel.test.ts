import test from 'ava';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parseGatewayConfig } from '../../src/shell/config.js';
import { classify } from '../../src/shell/invocation.js';
import { defaultSetupOptions } from '../../src/shell/setup.js';
import { createTemplating } from '../../src/provision/templating.js';
import { installMark, InstalledKeys, readStudentKeys, relayTunnel } from '../../src/shell/tunnel.js';
import { packageRoot } from '../../src/common/paths.js';

// The tunnel's gateway half without containers: what is a tunnel request, which keys are the
// student's, and the byte-for-byte relay against a real TCP peer on loopback.

test('the tunnel subsystem is the request vzsb-tunnel, nothing after it', (t) => {
  t.deepEqual(classify('vzsb-tunnel'), { kind: 'tunnel' });
  t.deepEqual(classify(' vzsb-tunnel '), { kind: 'tunnel' });
  t.deepEqual(classify('vzsb-tunnel 10.250.1.11 22'), { kind: 'exec', command: 'vzsb-tunnel 10.250.1.11 22' });
  t.deepEqual(classify('exec vzsb-tunnel'), { kind: 'exec', command: 'exec vzsb-tunnel' });
});

test("the student's keys: plain key lines only, each once, a missing file is none", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-keys-'));
  try {
    const ed = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIG1EFcTRQR/kKm9BKGwKjb9dF9imvdYKKgmhVpU9tgd1 alice@laptop';
    const sk = 'sk-ssh-ed25519@openssh.com AAAAGnNrLXNzaC1lZDI1NTE5QG9wZW5zc2guY29t alice@yubikey';
    await writeFile(join(dir, 'alice'), [`# alice`, ed, '', `  ${ed}  `, sk, 'command="sh" ssh-ed25519 AAAA', 'not a key', 'ssh-rsa bad!base64'].join('\n'));
    t.deepEqual(await readStudentKeys(dir, 'alice'), [ed, sk]);
    t.deepEqual(await readStudentKeys(dir, 'bob'), []);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test('gateway config: studentKeysDir, an absolute path, default /etc/vzsandbox/student-keys', (t) => {
  const base = { balancers: ['http://127.0.0.1:8760'], token: 'lease-token-units-0001' };
  t.is(parseGatewayConfig(base).studentKeysDir, '/etc/vzsandbox/student-keys');
  t.is(parseGatewayConfig({ ...base, studentKeysDir: '/srv/keys' }).studentKeysDir, '/srv/keys');
  t.throws(() => parseGatewayConfig({ ...base, studentKeysDir: 'keys' }, 'gw.yaml'), { message: /gw\.yaml: studentKeysDir: expected an absolute path, got "keys"/ });
});

test("the gateway's sshd settings name the subsystem; forwarding stays off for students", async (t) => {
  const vars = { sshd_max_startups: '200:30:400', sshd_per_source_max_startups: 60, sshd_per_source_netblock: '32:128', sshd_per_source_penalties: '', sshd_client_alive_interval: 10, sshd_client_alive_count_max: 2, studentsGroup: 'vzsb-students' };
  const text = await createTemplating().renderFile(join(packageRoot(), 'templates/gateway/sshd-students.conf.hbs'), vars, 'sshd-students.conf.hbs');
  t.regex(text, /^Subsystem vzsb-tunnel vzsb-tunnel$/m);
  t.true(text.indexOf('Subsystem') < text.indexOf('Match Group'), 'a global option, before the Match block');
  for (const line of ['AllowTcpForwarding no', 'AllowStreamLocalForwarding no', 'AllowAgentForwarding no', 'PermitTunnel no']) t.true(text.includes(line), line);
  const config = await createTemplating().renderFile(join(packageRoot(), 'templates/gateway/gateway.yaml.hbs'), { ...vars, ...gatewayVarsWith('/etc/vzsandbox/student-keys') }, 'gateway.yaml.hbs');
  t.is(parseGatewayConfig(JSON.parse(config.replace(/^#.*$/gm, ''))).studentKeysDir, '/etc/vzsandbox/student-keys');
});

function gatewayVarsWith(studentKeysDir: string) {
  const o = defaultSetupOptions({ balancers: ['http://10.0.0.5:8760'], token: 'lease-token-units-0001', logFile: '/var/log/vzsandbox/gateway.log', logLevel: 'info', sessionsDir: '/run/vzsandbox/gateway' });
  return { ...o, ...o.gateway, configPath: o.configPath, serviceUser: o.serviceUser, timeouts: {}, maxSessionsPerUser: 8, agentDrainSeconds: 3600, studentKeysDir };
}

/** A peer like sshd: greets first, then echoes what it gets upper-cased; on the client's end of input it says bye and closes. */
async function peer(): Promise<{ port: number; received: () => Buffer; close: () => Promise<void> }> {
  let got = Buffer.alloc(0);
  const server = createServer((s) => {
    s.on('error', () => {});
    s.write('SSH-2.0-peer\r\n');
    s.on('data', (d: Buffer) => {
      got = Buffer.concat([got, d]);
      s.write(d);
    });
    s.on('end', () => s.end('bye'));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { port: (server.address() as { port: number }).port, received: () => got, close: () => new Promise((r) => server.close(() => r())) };
}

function connected(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.once('error', reject);
  });
}

test('the relay: every byte both ways, in order, with backpressure; the end of input half-closes; status 0', async (t) => {
  const p = await peer();
  try {
    const sock = await connected(p.port);
    sock.pause();
    const stdin = new PassThrough();
    const stdout = new PassThrough({ highWaterMark: 1024 });
    const io = { stdin, stdout, stderr: new PassThrough(), term: 'dumb' };
    const relay = relayTunnel(sock, io);
    const chunks: Buffer[] = [];
    // a slow reader: the relay must not lose or reorder anything while the output is full
    const reading = (async () => {
      for await (const c of stdout) {
        chunks.push(c as Buffer);
        if (chunks.length % 16 === 0) await new Promise((r) => setTimeout(r, 1));
      }
    })();
    const payload = Buffer.alloc(4 * 1024 * 1024);
    for (let i = 0; i < payload.length; i++) payload[i] = (i * 7 + (i >> 12)) & 0xff;
    stdin.end(payload);
    t.is(await relay.done, 0);
    stdout.end();
    await reading;
    const out = Buffer.concat(chunks);
    t.is(out.subarray(0, 14).toString(), 'SSH-2.0-peer\r\n');
    t.true(out.subarray(14, 14 + payload.length).equals(payload), 'the echo, byte for byte');
    t.is(out.subarray(14 + payload.length).toString(), 'bye');
    t.true(p.received().equals(payload));
  } finally {
    await p.close();
  }
});

test('the relay: close() ends it at once (an end signal), a broken connection gives 255', async (t) => {
  const p = await peer();
  try {
    const sock = await connected(p.port);
    const io = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), term: 'dumb' };
    io.stdout.resume();
    const relay = relayTunnel(sock, io);
    await relay.firstByte;
    relay.close();
    t.is(await relay.done, 0);

    const broken = await connected(p.port);
    const io2 = { stdin: new PassThrough(), stdout: new PassThrough(), stderr: new PassThrough(), term: 'dumb' };
    io2.stdout.resume();
    const r2 = relayTunnel(broken, io2);
    broken.destroy(new Error('reset by peer'));
    t.is(await r2.done, 255);
  } finally {
    await p.close();
  }
});

test('installed keys are remembered per container, host key and keys, the oldest forgotten first', (t) => {
  const memo = new InstalledKeys(2);
  const a = installMark({ container: 'vzsb-0001', hostKeyFingerprint: 'SHA256:a' }, ['k1']);
  const b = installMark({ container: 'vzsb-0001', hostKeyFingerprint: 'SHA256:b' }, ['k1']);
  const c = installMark({ container: 'vzsb-0001', hostKeyFingerprint: 'SHA256:b' }, ['k1', 'k2']);
  t.not(a, b, 'a reset (new host key) is a new mark');
  t.not(b, c, 'new keys are a new mark');
  memo.add(a);
  memo.add(b);
  t.true(memo.has(a) && memo.has(b));
  memo.add(c);
  t.false(memo.has(a));
  t.true(memo.has(b) && memo.has(c));
});
