import { connect } from 'node:net';
import { VzsbError } from '../../common/errors.js';

const CONNECT_TIMEOUT_MS = 150;
const GIVE_UP_CHECK_MS = 500;

export interface WaitForSshOptions {
  host: string;
  port?: number;
  timeoutMs: number;
  /** asked at most every 500 ms while attempts fail; a reason stops waiting at once (e.g. the container stopped) */
  giveUp?: () => Promise<string | undefined>;
  /** name used in the error, e.g. the container id */
  what: string;
}

/**
 * Resolve once something at host:port accepts a TCP connection and greets with an SSH
 * banner ("SSH-2.0-..."). Polls with backoff (5 ms doubling to 50 ms), never longer than
 * timeoutMs in total, then fails with an error naming the address and the last failure.
 */
export async function waitForSsh(options: WaitForSshOptions): Promise<void> {
  const port = options.port ?? 22;
  const deadline = performance.now() + options.timeoutMs;
  let delay = 5;
  // Grows after each connect that got no answer in time: on a starved host the event loop
  // itself may run late, and a fixed short timeout could then never succeed.
  let connectMs = CONNECT_TIMEOUT_MS;
  let lastError = 'no attempt';
  let lastAsked = performance.now();
  for (;;) {
    const left = deadline - performance.now();
    const outcome = await probeBanner(options.host, port, connectMs, Math.max(50, Math.min(2000, left)));
    if (outcome === true) return;
    lastError = outcome;
    if (outcome.startsWith('no TCP answer')) connectMs = Math.min(1000, connectMs * 2);
    if (options.giveUp && performance.now() - lastAsked >= GIVE_UP_CHECK_MS) {
      lastAsked = performance.now();
      const reason = await options.giveUp();
      if (reason) throw new VzsbError('E_DRIVER_RUNTIME', `${options.what}: sshd at ${options.host}:${port} will not answer: ${reason}`);
    }
    if (performance.now() + delay > deadline) {
      throw new VzsbError('E_DRIVER_RUNTIME', `${options.what}: sshd at ${options.host}:${port} did not answer within ${options.timeoutMs} ms (${lastError})`);
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(50, delay * 2);
  }
}

/**
 * true when an SSH banner arrived, else a short reason. The connect is given little time at first:
 * on a local bridge a listening sshd answers a SYN in well under a millisecond, and a SYN
 * lost while the container's interface was still coming up would otherwise wait for the
 * kernel's 1 s retransmission. Once connected, the banner may take longer on a busy host.
 */
function probeBanner(host: string, port: number, connectTimeoutMs: number, timeoutMs: number): Promise<true | string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    let received = '';
    let timer: NodeJS.Timeout;
    const done = (result: true | string) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(result);
    };
    const connectMs = Math.min(connectTimeoutMs, timeoutMs);
    timer = setTimeout(() => done(`no TCP answer within ${connectMs} ms`), connectMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => done(`no banner within ${Math.round(timeoutMs)} ms`), timeoutMs);
    });
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      received += chunk;
      if (received.startsWith('SSH-')) done(true);
      else if (received.length >= 4) done(`not an SSH banner: ${JSON.stringify(received.slice(0, 20))}`);
    });
    socket.on('error', (e: NodeJS.ErrnoException) => done(e.code ?? e.message));
    socket.on('close', () => done('closed before the banner'));
  });
}
