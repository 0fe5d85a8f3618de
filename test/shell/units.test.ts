import test from 'ava';
import { once } from 'node:events';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import { VzsbError } from '../../src/common/errors.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { parseLease, releaseLease, requestLease, type BalancerClientOptions } from '../../src/shell/balancer-client.js';
import { parseConfigText, parseGatewayConfig } from '../../src/shell/config.js';
import { classify, readInvocation } from '../../src/shell/invocation.js';
import { createSessionKey } from '../../src/shell/session-key.js';
import { SessionRegistry } from '../../src/shell/session-registry.js';
import { defaultSetupOptions, renderGatewayFiles, setupGateway } from '../../src/shell/setup.js';
import { studentLine } from '../../src/shell/student-message.js';
import { deadUrl, reply, stubServer } from '../helpers/http-stub.js';

const TOKEN = 'lease-token-units-0001';
const base = { balancers: ['http://127.0.0.1:8760'], token: TOKEN };

test('config: errors name the field and never echo the token', (t) => {
  const cases: [unknown, RegExp][] = [
    [null, /gw\.yaml: \(root\): expected a mapping, got null/],
    [{ ...base, balancers: [] }, /balancers: expected a non-empty list of URLs, got a list/],
    [{ ...base, balancers: ['ftp://x'] }, /balancers\[0\]: expected an http\(s\) URL/],
    [{ ...base, token: 'short' }, /token: expected a lease token of at least 16/],
    [{ ...base, token: 'has a space in it 123' }, /token: /],
    [{ ...base, timeouts: { leaseMs: 'x' } }, /timeouts\.leaseMs: expected milliseconds from 10 to 600000, got "x"/],
    [{ ...base, timeouts: { lease: 5 } }, /timeouts\.lease: expected one of connectMs/],
    [{ ...base, log: { level: 'loud' } }, /log\.level: expected one of debug, info, warn, error, got "loud"/],
    [{ ...base, log: { file: 'rel.log' } }, /log\.file: expected an absolute path/],
    [{ ...base, extra: 1 }, /extra: expected one of balancers, token/],
  ];
  for (const [value, message] of cases) {
    const err = t.throws(() => parseGatewayConfig(value, 'gw.yaml'), undefined, JSON.stringify(value));
    t.regex(err!.message, message, JSON.stringify(value));
    t.false(err!.message.includes('has a space'), 'the token is not echoed');
  }
  const ok = parseGatewayConfig({ ...base, balancers: ['http://a:1/', 'https://b:2'], timeouts: { leaseMs: 1500 } }, 'gw.yaml');
  t.deepEqual(ok.balancers, ['http://a:1', 'https://b:2']);
  t.is(ok.leaseTimeoutMs, 1500);
  t.is(ok.requestTimeoutMs, 20_000);
});

test('config text: JSON with # comment lines, or YAML', async (t) => {
  t.deepEqual(await parseConfigText('# comment\n{"token": "a#b",\n  # inside\n "x": 1}\n', 's'), { token: 'a#b', x: 1 });
  t.deepEqual(await parseConfigText('token: abc # note\nbalancers:\n  - http://h:1\n', 's'), { token: 'abc', balancers: ['http://h:1'] });
  await t.throwsAsync(parseConfigText('a: [', 'gw.yaml'), { message: /gw\.yaml: not valid YAML/ });
});

test('what the student asked for: login, command, sftp, scp', (t) => {
  t.deepEqual(classify(undefined), { kind: 'interactive' });
  t.deepEqual(classify('  '), { kind: 'interactive' });
  t.deepEqual(classify('ls -l'), { kind: 'exec', command: 'ls -l' });
  t.deepEqual(classify('/usr/lib/openssh/sftp-server'), { kind: 'sftp' });
  t.deepEqual(classify('/usr/lib/sftp-server -l INFO'), { kind: 'sftp' });
  t.deepEqual(classify('internal-sftp'), { kind: 'sftp' });
  t.deepEqual(classify('scp -t /root'), { kind: 'scp', command: 'scp -t /root' });
  t.deepEqual(classify('echo sftp-server'), { kind: 'exec', command: 'echo sftp-server' });
  t.throws(() => classify('x'.repeat(70_000)), { message: /longer than/ });
});

test('identity comes from SUDO_USER only; TERM and SSH_CLIENT are checked', (t) => {
  t.throws(() => readInvocation({ USER: 'alice' }), { code: 'E_IDENTITY' } as never);
  t.throws(() => readInvocation({ SUDO_USER: 'Bad Name' }), { code: 'E_IDENTITY' } as never);
  t.throws(() => readInvocation({ SUDO_USER: 'root' }), { code: 'E_IDENTITY' } as never);
  const inv = readInvocation({ SUDO_USER: 'alice', TERM: 'xterm;rm -rf', SSH_CLIENT: '10.1.2.3 51000 22', VZSB_HAS_COMMAND: '1', VZSB_COMMAND: 'id' });
  t.deepEqual(inv, { user: 'alice', term: 'xterm-256color', source: '10.1.2.3 51000', request: { kind: 'exec', command: 'id' } });
  t.deepEqual(readInvocation({ SUDO_USER: 'alice', VZSB_COMMAND: 'id' }).request, { kind: 'interactive' }, 'a command only counts with the -c flag');
  t.is(readInvocation({ SUDO_USER: 'alice', SSH_CLIENT: 'x\ny 1 2' }).source, undefined);
});

test('lease answers are checked before anything connects', (t) => {
  const good = { container: 'vzsb-0007', address: '10.0.0.7', sshPort: 22, hostKeyFingerprint: generateEd25519().fingerprint, user: 'alice', hostKey: generateEd25519().publicKey };
  t.like(parseLease(good, 'http://b'), { container: 'vzsb-0007', balancer: 'http://b' });
  const bad: [Record<string, unknown>, RegExp][] = [
    [{ ...good, address: '10.0.0.7; rm' }, /address: expected an IP address or host name/],
    [{ ...good, sshPort: 0 }, /sshPort: expected a port 1-65535/],
    [{ ...good, hostKeyFingerprint: 'MD5:aa' }, /hostKeyFingerprint: expected a SHA256 key fingerprint/],
    [{ ...good, container: undefined }, /container: expected a container name, got nothing/],
  ];
  for (const [body, message] of bad) t.throws(() => parseLease(body, 'http://b'), { message: new RegExp(`lease answer from http://b: ${message.source}`) });
});

/** A local HTTP server answering with `handler`; its URL. */
const leaseBody = { container: 'vzsb-0001', address: '127.0.0.1', sshPort: 22, hostKeyFingerprint: generateEd25519().fingerprint, user: 'alice' };

function client(balancers: string[], extra: Partial<BalancerClientOptions> = {}): BalancerClientOptions {
  return { balancers, token: TOKEN, connectTimeoutMs: 500, requestTimeoutMs: 2000, ...extra };
}

test('balancer client: fails over past a dead and a failing balancer, sends the token and the key', async (t) => {
  const seen: { auth?: string; body?: string }[] = [];
  const live = await stubServer(t, (req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      seen.push({ auth: req.headers.authorization, body });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(leaseBody));
    });
  });
  const failing = await stubServer(t, reply(500, { error: { code: 'E_INTERNAL', message: 'boom' } }));
  const failovers: string[] = [];
  const key = generateEd25519().publicKey;
  const lease = await requestLease(client([await deadUrl(), failing, live], { onFailover: (b) => failovers.push(b) }), 'alice', key, 5000);
  t.is(lease.balancer, live);
  t.is(failovers.length, 2);
  t.is(seen[0]!.auth, `Bearer ${TOKEN}`);
  t.deepEqual(JSON.parse(seen[0]!.body!), { user: 'alice', publicKey: key });
});

test('balancer client: no capacity and refused credentials are final, with their codes', async (t) => {
  const full = await stubServer(t, reply(503, { error: { code: 'E_POOL_FULL', message: 'no container is free' } }));
  let asked = 0;
  const never = await stubServer(t, (req, res) => {
    asked++;
    reply(200, leaseBody)(req, res);
  });
  await t.throwsAsync(requestLease(client([full, never]), 'alice', generateEd25519().publicKey, 5000), { code: 'E_NO_CAPACITY' } as never);
  const denied = await stubServer(t, reply(401, { error: { code: 'E_UNAUTHORIZED', message: 'the bearer token is not valid' } }));
  const err = await t.throwsAsync<VzsbError>(requestLease(client([denied, never]), 'alice', generateEd25519().publicKey, 5000));
  t.is(err!.code, 'E_GATEWAY_AUTH');
  t.false(String(err!.details).includes(TOKEN));
  t.is(asked, 0, 'the next balancer was not asked');
});

test('balancer client: a balancer that never answers costs at most the lease time', async (t) => {
  const hung = await stubServer(t, (req) => req.resume());
  const started = performance.now();
  const err = await t.throwsAsync<VzsbError>(requestLease(client([hung], { requestTimeoutMs: 60_000 }), 'alice', generateEd25519().publicKey, 700));
  const ms = performance.now() - started;
  t.is(err!.code, 'E_BALANCER_DOWN');
  t.regex(String(err!.details), /no answer within/);
  t.true(ms < 1500, `${ms} ms`);
});

test('balancer client: release goes to the granting balancer first; no lease is fine', async (t) => {
  const calls: string[] = [];
  const a = await stubServer(t, (req, res) => {
    calls.push(`a ${req.method} ${req.url}`);
    reply(404, { error: { code: 'E_NO_LEASE', message: 'none' } })(req, res);
  });
  const b = await stubServer(t, (req, res) => {
    calls.push(`b ${req.method} ${req.url}`);
    reply(200, { user: 'alice' })(req, res);
  });
  t.is(await releaseLease(client([a, b]), 'alice', b, 2000), b);
  t.is(await releaseLease(client([a, b]), 'alice', undefined, 2000), a);
  t.deepEqual(calls, ['b DELETE /v1/leases/alice', 'a DELETE /v1/leases/alice']);
});

test('session registry: the last session of a user is known; markers of dead processes do not count', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-sessions-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const alive = new Set([101, 102]);
  const one = new SessionRegistry(dir, 101, (p) => alive.has(p));
  const two = new SessionRegistry(dir, 102, (p) => alive.has(p));
  t.is(await one.enter('alice'), 0);
  t.is(await two.enter('alice'), 1);
  await writeFile(join(dir, 'alice', '999'), 'stale\n');
  t.is(await one.leave('alice'), 1);
  t.deepEqual((await readdir(join(dir, 'alice'))).sort(), ['102']);
  alive.delete(101);
  t.is(await two.leave('alice'), 0);
});

test('session key: OpenSSH reads the private key and derives the same public key', async (t) => {
  const key = createSessionKey('alice@vzsb-gateway');
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-key-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'k'), key.privateKey, { mode: 0o600 });
  const pub = await run('ssh-keygen', ['-y', '-f', join(dir, 'k')]);
  t.is(pub.exitCode, 0, pub.stderr);
  t.is(pub.stdout.trim().split(' ').slice(0, 2).join(' '), key.publicKey.split(' ').slice(0, 2).join(' '));
  const fp = await run('ssh-keygen', ['-l', '-f', join(dir, 'k')]);
  t.true(fp.stdout.includes(key.fingerprint));
});

test('setup templates: sudoers passes visudo, the wrapper sh -n, the client perl -c, the config parses; bad names are refused', async (t) => {
  const options = defaultSetupOptions({ balancers: ['http://10.0.0.5:8760'], token: TOKEN, logFile: '/var/log/vzsandbox/gateway.log', logLevel: 'info', sessionsDir: '/run/vzsandbox/gateway' });
  options.sessionCommand = ['/usr/bin/node', '/opt/vzsandbox/dist/shell/main.js', '--session', '--config', '/etc/vzsandbox/gw=1.yaml'];
  const files = await renderGatewayFiles(options);
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-render-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  await writeFile(join(dir, 'sudoers'), files.sudoers, { mode: 0o440 });
  const visudo = await run('visudo', ['-cf', join(dir, 'sudoers')]);
  t.is(visudo.exitCode, 0, visudo.stderr + visudo.stdout);
  // The client, without arguments ("" forbids any).
  t.regex(files.sudoers, /^Cmnd_Alias VZSB_SESSION = \/usr\/local\/lib\/vzsandbox\/vzsb-client ""$/m);
  t.regex(files.sudoers, /^%vzsb-students ALL = \(vzsb-gateway\) NOPASSWD: VZSB_SESSION$/m);
  t.regex(files.sudoers, /env_keep = "TERM SSH_CLIENT SSH_CONNECTION SSH_TTY VZSB_COMMAND VZSB_HAS_COMMAND"/);
  await writeFile(join(dir, 'wrapper'), files.wrapper);
  t.is((await run('sh', ['-n', join(dir, 'wrapper')])).exitCode, 0);
  t.regex(files.wrapper, /^exec \/usr\/bin\/sudo -n -u vzsb-gateway -- \/usr\/local\/lib\/vzsandbox\/vzsb-client$/m);
  await writeFile(join(dir, 'client'), files.client);
  const perl = await run('perl', ['-c', join(dir, 'client')]);
  t.is(perl.exitCode, 0, perl.stderr);
  t.regex(files.client, /^my \$SOCKET = '\/run\/vzsandbox\/gateway\/agent\.sock';$/m);
  t.regex(files.client, /^my @STANDALONE = \('\/usr\/bin\/node', '\/opt\/vzsandbox\/dist\/shell\/main\.js', '--session', '--config', '\/etc\/vzsandbox\/gw=1\.yaml'\);$/m);
  t.like(parseGatewayConfig(await parseConfigText(files.config, 'c'), 'c'), { token: TOKEN, balancers: ['http://10.0.0.5:8760'] });

  await t.throwsAsync(renderGatewayFiles({ ...options, sudoersPath: '/etc/sudoers.d/vzsb.gateway' }), { message: /sudoersPath: sudo skips files/ });
  await t.throwsAsync(renderGatewayFiles({ ...options, serviceUser: 'Root Kit' }), { message: /serviceUser: expected a Unix user/ });
  await t.throwsAsync(renderGatewayFiles({ ...options, sessionCommand: ['/usr/bin/node', 'x y'] }), { message: /sessionCommand\[1\]: expected a word/ });
  await t.throwsAsync(renderGatewayFiles({ ...options, sessionCommand: ['/usr/bin/node', "it's"] }), { message: /sessionCommand\[1\]: expected a word/ });
  await t.throwsAsync(renderGatewayFiles({ ...options, clientPath: 'vzsb-client' }), { message: /clientPath: expected an absolute path/ });
});

test('the student sees one line with a code; unknown errors are E_INTERNAL', (t) => {
  t.is(studentLine(new VzsbError('E_NO_CAPACITY', 'internal words')), 'vzsb: All sandboxes are in use right now. Try again in a minute. [E_NO_CAPACITY]\n');
  t.is(studentLine(new Error('stack trace material')), 'vzsb: Something went wrong on the gateway. Try again; tell your instructor if it lasts. [E_INTERNAL]\n');
});

test('the session entry: usage, no sudo identity, unreadable config; one line for the student, exit 255', async (t) => {
  const main = new URL('../../src/shell/main.ts', import.meta.url).pathname;
  const session = (args: string[], env: Record<string, string>) => run(process.execPath, ['--import', 'tsx', main, ...args], { env: { PATH: process.env.PATH!, ...env } });
  const usage = await session(['--config', '/x'], {});
  t.is(usage.exitCode, 2);
  t.regex(usage.stderr, /usage: main\.js --session/);
  const anonymous = await session(['--session', '--config', '/nonexistent/gateway.yaml'], {});
  t.is(anonymous.exitCode, 255);
  t.is(anonymous.stderr, 'vzsb: This account cannot have a sandbox. [E_IDENTITY]\n');
  const noConfig = await session(['--session', '--config', '/nonexistent/gateway.yaml'], { SUDO_USER: 'alice' });
  t.is(noConfig.exitCode, 255);
  t.is(noConfig.stderr, 'vzsb: The gateway is misconfigured. Tell your instructor. [E_CONFIG]\n');
  // `vzsb shell --session` is the same session behind the CLI.
  const cliMain = new URL('../../src/cli/main.ts', import.meta.url).pathname;
  const code = `import { main } from ${JSON.stringify(cliMain)}; main(process.argv.slice(1)).then((c) => { process.exitCode = c; });`;
  const cli = await run(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, 'shell', '--session', '--config', '/nonexistent/gateway.yaml'], { env: { PATH: process.env.PATH!, SUDO_USER: 'alice' } });
  t.is(cli.exitCode, 255);
  t.regex(cli.stderr, /\[E_CONFIG\]\n$/);
});

test('a lease whose host key and fingerprint disagree is refused before connecting', async (t) => {
  const { openLink } = await import('../../src/shell/ssh-link.js');
  const reported = generateEd25519();
  const other = generateEd25519();
  // Port 9 on loopback: nothing may be contacted at all.
  const err = await t.throwsAsync<VzsbError>(
    openLink({ address: '127.0.0.1', port: 9, hostKey: reported.publicKey, hostKeyFingerprint: other.fingerprint, privateKey: createSessionKey('x').privateKey, readyTimeoutMs: 1000 }),
  );
  t.is(err!.code, 'E_HOSTKEY');
  t.regex(String(err!.details), new RegExp(`hostKey ${reported.fingerprint.replace(/[+/]/g, '\\$&')} vs hostKeyFingerprint`));
});

test('setup refuses a session command whose program is not there, before changing anything', async (t) => {
  const options = defaultSetupOptions({ balancers: ['http://10.0.0.5:8760'], token: TOKEN, logFile: '/nonexistent-vzsb/gateway.log', logLevel: 'info', sessionsDir: '/nonexistent-vzsb/sessions' });
  options.studentsGroup = 'vzsbunitgrp';
  options.sessionCommand = [process.execPath, '/nonexistent-vzsb/dist/shell/main.js', '--session'];
  await t.throwsAsync(setupGateway(options), { message: /sessionCommand\[1\]: \/nonexistent-vzsb\/dist\/shell\/main\.js does not exist/ });
  t.not((await run('getent', ['group', 'vzsbunitgrp'])).exitCode, 0, 'no group was created');
});

test('sshd readiness: the connection that saw the banner is handed over with the banner; refusals and non-SSH answers time out with the reason', async (t) => {
  const { connectWhenReady } = await import('../../src/shell/sshd-ready.js');
  const { createServer: createTcpServer } = await import('node:net');
  const banner = 'SSH-2.0-OpenSSH_test\r\n';
  const greeter = createTcpServer((s) => s.end(banner + 'more'));
  greeter.listen(0, '127.0.0.1');
  await once(greeter, 'listening');
  t.teardown(() => greeter.close());
  const sock = await connectWhenReady({ host: '127.0.0.1', port: (greeter.address() as { port: number }).port, timeoutMs: 2000, what: 'greeter' });
  const chunks: Buffer[] = [];
  sock.on('data', (c: Buffer) => chunks.push(c));
  sock.resume();
  await once(sock, 'end');
  t.is(Buffer.concat(chunks).toString(), banner + 'more', 'the banner is read again by the next reader');
  sock.destroy();

  const http = createTcpServer((s) => s.end('HTTP/1.1 400 Bad Request\r\n\r\n'));
  http.listen(0, '127.0.0.1');
  await once(http, 'listening');
  t.teardown(() => http.close());
  const err = await t.throwsAsync<VzsbError>(connectWhenReady({ host: '127.0.0.1', port: (http.address() as { port: number }).port, timeoutMs: 2000, what: 'web' }));
  t.is(err!.code, 'E_SSH_TIMEOUT');
  t.regex(String(err!.details), /web: sshd at 127\.0\.0\.1:\d+ did not answer within 2000 ms \(not an SSH banner: "HTTP\/1\.1 400 Bad Req"\)/);

  const started = performance.now();
  const refused = await t.throwsAsync<VzsbError>(connectWhenReady({ host: '127.0.0.1', port: Number(new URL(await deadUrl()).port), timeoutMs: 300, what: 'nothing' }));
  t.regex(String(refused!.details), /ECONNREFUSED/);
  t.true(performance.now() - started < 1000);
});
