import test from 'ava';
import { connect } from 'node:net';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { duplicateKey } from '../../src/daemons/common/http.js';
import { httpCall, startTestHypervisor } from '../helpers/daemons.js';

const KEY = generateEd25519('gateway').publicKey;

/** Send `head` (and `body` chunks while the server reads) on a raw socket; the answer and whether the server closed it. */
function raw(url: string, head: string, body?: { chunk: Buffer; times: number }): Promise<{ text: string; closedMs: number }> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const sock = connect({ host: hostname, port: Number(port) });
    let text = '';
    let sent = 0;
    const pump = () => {
      while (body && sent < body.times && !sock.destroyed) {
        sent++;
        if (!sock.write(body.chunk)) return void sock.once('drain', pump);
      }
    };
    sock.on('connect', () => {
      sock.write(head);
      pump();
    });
    sock.on('data', (d) => (text += d.toString('latin1')));
    sock.on('error', () => {});
    sock.on('close', () => resolve({ text, closedMs: performance.now() - started }));
    setTimeout(() => {
      sock.destroy();
      reject(new Error(`the server kept the connection open 15 s; got ${JSON.stringify(text.slice(0, 200))}`));
    }, 15_000).unref();
  });
}

test('duplicateKey finds the first repeated key of any object, with its path', (t) => {
  t.deepEqual(duplicateKey('{"user":"a","user":"root"}'), { key: 'user', path: '' });
  t.deepEqual(duplicateKey('{"a":{"b":1,"c":[{"x":1},{"x":2,"x":3}]}}'), { key: 'x', path: 'a.c[1]' });
  t.deepEqual(duplicateKey('{"a":"\\"user\\"","b":"{\\"a\\":1}","user":1}'), undefined);
  t.deepEqual(duplicateKey('{"\\u0075ser":1,"user":2}'), { key: 'user', path: '' }, 'escapes are compared decoded');
  t.is(duplicateKey('[{"a":1},{"a":1}]'), undefined);
});

test('strict input: duplicate keys 400 naming the key, unknown methods 405 without a stack, oversize bodies 413 and closed, long URLs 414', async (t) => {
  const h = await startTestHypervisor(t, { name: 'hyps', standby: 1, max: 2 });
  const dup = await httpCall(h.url, 'POST', '/v1/leases', {
    token: h.token,
    raw: `{"user":"alice","publicKey":${JSON.stringify(KEY)},"user":"root"}`,
    headers: { 'content-type': 'application/json' },
  });
  t.is(dup.status, 400, dup.text);
  t.is(dup.body.error.code, 'E_DUPLICATE_KEY');
  t.regex(dup.body.error.message, /duplicate key "user"/);
  t.deepEqual(h.daemon.pool.leases(), []);

  for (const method of ['TRACE', 'PROPFIND']) {
    const r = await raw(h.url, `${method} /v1/leases HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    t.regex(r.text, /^HTTP\/1\.1 405 /, method);
    t.regex(r.text, /"code":"E_METHOD"/);
    t.regex(r.text, /\r\nAllow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n/);
  }
  const wrongMethod = await httpCall(h.url, 'PUT', '/v1/leases', { token: h.token });
  t.is(wrongMethod.status, 405);
  t.false(h.log.records.some((r) => r.level === 'error' || JSON.stringify(r).includes('"stack"')), 'no error and no stack in the log for a bad method');

  // 10 MB announced and sent: 413 at once, and the server closes instead of reading it all.
  const big = await raw(
    h.url,
    `POST /v1/leases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.token}\r\nContent-Type: application/json\r\nContent-Length: ${10 * 1048576}\r\n\r\n`,
    { chunk: Buffer.alloc(65536, 0x20), times: 160 },
  );
  t.regex(big.text, /^HTTP\/1\.1 413 /);
  t.regex(big.text, /\r\nConnection: close\r\n/i);
  t.true(big.closedMs < 5000, `closed after ${Math.round(big.closedMs)} ms`);
  // Chunked, no length: the same once the limit is passed.
  const chunked = await raw(
    h.url,
    `POST /v1/leases HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${h.token}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n`,
    { chunk: Buffer.from(`1000\r\n${' '.repeat(4096)}\r\n`), times: 64 },
  );
  t.regex(chunked.text, /^HTTP\/1\.1 413 /);
  t.true(chunked.closedMs < 5000);

  for (const size of [10_000, 100_000]) {
    const r = await raw(h.url, `GET /v1/users/${'a'.repeat(size)} HTTP/1.1\r\nHost: x\r\n\r\n`);
    t.regex(r.text, /^HTTP\/1\.1 414 /, `URL of ${size}`);
    t.regex(r.text, /"code":"E_URI_TOO_LONG"/);
    t.true(r.closedMs < 5000);
  }
  // Still serving.
  t.is((await httpCall(h.url, 'GET', '/healthz')).status, 200);
});
