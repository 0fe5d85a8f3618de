import { connect, type Socket } from 'node:net';
import { VzsbError } from '../common/errors.js';

/**
 * Wait until the container's sshd answers, and keep the connection that proved it: poll a TCP
 * connect plus the SSH banner with backoff (5 ms doubling to 50 ms) within `timeoutMs`, then
 * hand the socket, with what it already received put back, to the ssh client. One connection
 * per login instead of a probe and a second one (each costs the container's sshd a fork).
 */
export interface ReadyOptions {
  host: string;
  port: number;
  timeoutMs: number;
  /** Names the target in the error, e.g. the container id. */
  what: string;
}

/** A SYN to a listening sshd on a local bridge is answered in well under a millisecond; a lost one would wait the kernel's 1 s retry. */
const CONNECT_TIMEOUT_MS = 150;

export async function connectWhenReady(options: ReadyOptions): Promise<Socket> {
  const deadline = performance.now() + options.timeoutMs;
  let delay = 5;
  let lastError = 'no attempt';
  for (;;) {
    const left = deadline - performance.now();
    const outcome = await attempt(options.host, options.port, Math.max(50, Math.min(2000, left)));
    if (typeof outcome !== 'string') return outcome;
    lastError = outcome;
    if (performance.now() + delay > deadline) {
      throw new VzsbError('E_SSH_TIMEOUT', 'the container did not answer in time', {
        details: `${options.what}: sshd at ${options.host}:${options.port} did not answer within ${options.timeoutMs} ms (${lastError})`,
      });
    }
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(50, delay * 2);
  }
}

/** The connected socket once "SSH-" arrived (paused, the bytes put back), else a short reason. */
function attempt(host: string, port: number, timeoutMs: number): Promise<Socket | string> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    // ssh2 gets this socket: without TCP_NODELAY each small packet that follows an unanswered
    // one waits for the peer's delayed ACK (40 ms), several times in a handshake and on keystrokes.
    socket.setNoDelay(true);
    let received = Buffer.alloc(0);
    let settled = false;
    const fail = (reason: string) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(reason);
    };
    const connectMs = Math.min(CONNECT_TIMEOUT_MS, timeoutMs);
    let timer = setTimeout(() => fail(`no TCP answer within ${connectMs} ms`), connectMs);
    socket.once('connect', () => {
      clearTimeout(timer);
      timer = setTimeout(() => fail(`no banner within ${Math.round(timeoutMs)} ms`), timeoutMs);
    });
    const onData = (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4) return;
      if (received.subarray(0, 4).toString('latin1') !== 'SSH-') {
        fail(`not an SSH banner: ${JSON.stringify(received.subarray(0, 20).toString('latin1'))}`);
        return;
      }
      settled = true;
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', onError);
      socket.off('close', onClose);
      socket.pause();
      socket.unshift(received);
      resolve(socket);
    };
    const onError = (e: NodeJS.ErrnoException) => fail(e.code ?? e.message);
    const onClose = () => fail('closed before the banner');
    socket.on('data', onData);
    socket.on('error', onError);
    socket.on('close', onClose);
  });
}
