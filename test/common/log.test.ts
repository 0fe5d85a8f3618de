import test from 'ava';
import { runChecked, type Runner } from '../../src/common/exec.js';
import { VzsbError } from '../../src/common/errors.js';
import { createLogger, type LoggerOptions } from '../../src/common/log.js';

/** A logger writing into an array; `records()` parses each line as the tests and operators do. */
function capture(options: LoggerOptions = {}) {
  const lines: string[] = [];
  const logger = createLogger({ level: 'debug', now: () => new Date('2026-01-02T03:04:05.006Z'), write: (l) => lines.push(l), ...options });
  return { logger, lines, records: () => lines.map((l) => JSON.parse(l) as Record<string, any>) };
}

/** A runner whose command fails as lxc-copy does when the disk is full. */
const failing =
  (stderr: string): Runner =>
  async (file, args) => ({ command: [file, ...args].join(' '), exitCode: 1, signal: null, stdout: '', stderr, durationMs: 3, timedOut: false, failed: true });

const STDERR = 'lxc-copy: vzsb-0003: lxccontainer.c: do_lxcapi_clone: 3755 No space left on device - Failed to clone\n';

test('one JSON line per event: time, level, event, base, then fields; levels below the minimum are dropped', (t) => {
  const { logger, lines } = capture({ level: 'info', base: { daemon: 'hypervisor' } });
  logger.debug('not.written');
  logger.info('lease.granted', { user: 'alice', ms: 12, hypervisors: [{ name: 'h1', up: true }] });
  logger.child({ driver: 'lxc' }).warn('slot.slow', { daemon: 'overridden by the field' });
  t.deepEqual(lines, [
    '{"time":"2026-01-02T03:04:05.006Z","level":"info","event":"lease.granted","daemon":"hypervisor","user":"alice","ms":12,"hypervisors":[{"name":"h1","up":true}]}',
    '{"time":"2026-01-02T03:04:05.006Z","level":"warn","event":"slot.slow","daemon":"overridden by the field","driver":"lxc"}',
  ]);
});

test("an error keeps its code, details (a command's stderr), stack and cause chain", async (t) => {
  const { logger, lines, records } = capture();
  const command = await runChecked('lxc-copy', ['-n', 'vzsb-base', '-N', 'vzsb-0003'], {}, failing(STDERR)).catch((err: unknown) => err);
  const err = new VzsbError('E_DRIVER_RUNTIME', 'cloning vzsb-0003 failed', { cause: command, details: 'lxc-copy -n vzsb-base -N vzsb-0003' });
  logger.error('container.broken', { container: 'vzsb-0003', error: err });
  t.is(lines.length, 1, 'one line');
  const { error } = records()[0]!;
  t.like(error, { type: 'VzsbError', code: 'E_DRIVER_RUNTIME', message: 'cloning vzsb-0003 failed', details: 'lxc-copy -n vzsb-base -N vzsb-0003' });
  t.regex(error.stack, /^VzsbError: cloning vzsb-0003 failed\n\s+at /);
  t.like(error.cause, { type: 'VzsbError', code: 'E_COMMAND', details: STDERR });
  t.regex(error.cause.stack, /at commandError/);
});

test('a cause that is not an Error, errors inside lists and an AggregateError are written too', (t) => {
  const { logger, records } = capture();
  logger.warn('x', { error: new Error('outer', { cause: 'ENOSPC on /var/lib/lxc' }), errors: [new Error('first')], all: new AggregateError([new Error('a'), new Error('b')], 'both failed') });
  const r = records()[0]!;
  t.is(r.error.cause, 'ENOSPC on /var/lib/lxc');
  t.is(r.errors[0].message, 'first');
  t.deepEqual(r.all.aggregateErrors.map((e: { message: string }) => e.message), ['a', 'b']);
});

test('a long stderr keeps its start and its end, and the line stays one line', (t) => {
  const { logger, lines, records } = capture();
  const stderr = `first line\n${'apt: progress\n'.repeat(10_000)}E: the error at the end\n`;
  logger.error('driver.prepare_failed', { error: new VzsbError('E_DRIVER_RUNTIME', 'prepare failed', { details: stderr }) });
  t.is(lines.length, 1);
  t.false(lines[0]!.includes('\n'));
  const details = records()[0]!.error.details as string;
  t.true(details.length < 9000, `${details.length} characters`);
  t.true(details.startsWith('first line\n'));
  t.true(details.endsWith('E: the error at the end\n'));
  t.regex(details, /\[\.\.\. \d+ characters left out \.\.\.\]/);
});

test("a token in an error's message, details or cause, a bearer header and a private key never reach the log", async (t) => {
  const token = 'lease-token-0123456789abcdef';
  const quoted = 'adm"in\\token-0123456789';
  const { logger, lines } = capture({ secrets: [token, quoted] });
  const key = '-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----';
  const command = await runChecked('curl', ['-H', `Authorization: Bearer ${token}`, 'http://127.0.0.1:1/v1/leases'], {}, failing(`curl: (7) token ${token} refused\n`)).catch((err: unknown) => err);
  logger.error('hypervisor.down', {
    error: new VzsbError('E_HYPERVISOR_UNREACHABLE', `the hypervisor refused ${token}`, { details: `key:\n${key}\n${quoted}`, cause: command }),
    url: `http://127.0.0.1:1/?t=${token}`,
    note: 'Authorization: Bearer some-other-credential',
    token,
    nested: { privateKey: 'abc', list: [{ adminToken: 'def' }] },
  });
  const line = lines.join('\n');
  for (const secret of [token, quoted, JSON.stringify(quoted).slice(1, -1), 'b3BlbnNzaC1rZXktdjEAAAAA', 'some-other-credential', '"abc"', '"def"']) {
    t.false(line.includes(secret), `${secret} reached the log: ${line}`);
  }
  t.true(line.includes('[redacted]'));
  t.true(line.includes('[redacted private key]'));
  t.true(line.includes('curl: (7) token'), 'the rest of the stderr is kept');
});

test('an event whose fields cannot be written is still logged', (t) => {
  const { logger, records } = capture();
  const cycle: Record<string, unknown> = {};
  cycle.self = cycle;
  logger.info('odd', { cycle });
  t.like(records()[0], { event: 'odd', level: 'info' });
  t.regex(records()[0]!.logError, /fields not written/);
});
