import { readFile } from 'node:fs/promises';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { VzsbError } from '../common/errors.js';
import type { Relay, Terminal } from './ssh-link.js';

/**
 * The tunnel (`ssh -s STUDENT@GATEWAY vzsb-tunnel`, a ProxyCommand): the student's own OpenSSH
 * client speaks SSH with their container's sshd, so port and agent forwarding, sftp, scp, rsync
 * and VS Code all end inside the container. The session leases the container as a login does;
 * this file adds the two steps after the lease: the student's keys are made acceptable to the
 * container's sshd, and the student's stdin/stdout are joined to the connection the session
 * opened to that sshd (the lease's address and port, nothing else), byte for byte.
 */




/** A plain authorized_keys line without options: "type base64 [comment]". */
const KEY_LINE = /^(ssh-[a-z0-9-]+|ecdsa-sha2-[a-z0-9-]+|sk-[a-z0-9@.-]+|[a-z0-9-]+-cert-v01@openssh\.com) [A-Za-z0-9+/]+={0,2}( [^\0\r\n]*)?$/;
const MAX_KEYS = 64;

/** The student's keys (those the gateway's sshd accepts for them, as the inventory lists them). */
export async function readStudentKeys(dir: string, user: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(join(dir, user), 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw new VzsbError('E_CONFIG', 'the gateway cannot read your keys', { details: `${join(dir, user)}: ${(err as Error).message}`, cause: err });
  }
  return [
    ...new Set(
      text
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => KEY_LINE.test(l)),
    ),
  ].slice(0, MAX_KEYS);
}

/**
 * Adds each key that is not there yet to root's authorized_keys in the container, over the
 * session's own link (the one-time key). The file is the student's, inside their own container,
 * so nothing on a host follows a path the student controls; a reset makes a new container
 * without them. The keys arrive on stdin, one a line: no key ever becomes part of the command.
 */
const INSTALL_SCRIPT =
  'umask 077; mkdir -p /root/.ssh && cd /root/.ssh && touch authorized_keys && ' +
  'while IFS= read -r k; do grep -qxF -- "$k" authorized_keys || printf \'%s\\n\' "$k" >> authorized_keys; done';

export function installStudentKeys(client: Client, keys: readonly string[], timeoutMs: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new VzsbError('E_SSH_TIMEOUT', 'the container did not take your keys in time', { details: `key install took over ${timeoutMs} ms` })), timeoutMs);
    client.exec(INSTALL_SCRIPT, (err, stream) => {
      if (err) {
        clearTimeout(timer);
        reject(new VzsbError('E_SSH', 'the container refused to take your keys', { details: err.message, cause: err }));
        return;
      }
      let code: number | undefined;
      stream.on('exit', (c: number | null) => (code = c ?? undefined));
      stream.resume();
      stream.stderr.resume();
      stream.once('close', () => {
        clearTimeout(timer);
        if (code === 0) resolve();
        else reject(new VzsbError('E_SSH', 'the container did not take your keys', { details: `key install exited ${code ?? 'without a status'}` }));
      });
      stream.end(keys.map((k) => k + '\n').join(''));
    });
  });
}

/**
 * The key installs an agent has done, so a student's next tunnel to the same container (VS Code
 * opens several) costs no second ssh connection: marked by container, host key (new at every
 * reset) and the keys. Bounded; the oldest marks go first. A student who deletes the keys in
 * their container gets them back after a reset, or a restart of the agent.
 */
export class InstalledKeys {
  readonly #marks = new Set<string>();
  constructor(private readonly max = 10_000) {}
  has(mark: string): boolean {
    return this.#marks.has(mark);
  }
  add(mark: string): void {
    this.#marks.add(mark);
    if (this.#marks.size > this.max) this.#marks.delete(this.#marks.values().next().value!);
  }
}

export function installMark(target: { container: string; hostKeyFingerprint: string }, keys: readonly string[]): string {
  return `${target.container} ${target.hostKeyFingerprint} ${keys.join('\n')}`;
}

export interface TunnelRelay extends Relay {
  /** Ends the tunnel at once (an end signal, the session's end). */
  close(): void;
}

/**
 * Joins the student's stdin/stdout to `sock`, the connection to the container's sshd that
 * showed it was up (what it had received, sshd's banner, is still in it). Backpressure both
 * ways; the student's end of input half-closes the connection, as `ssh -W` does. Resolves 0
 * when sshd closes the connection, 255 when it broke.
 */
export function relayTunnel(sock: Socket, io: Terminal): TunnelRelay {
  let markFirst: () => void = () => {};
  const firstByte = new Promise<void>((r) => (markFirst = r));
  let failed = false;
  sock.once('data', () => markFirst());
  sock.on('error', () => (failed = true));
  const done = new Promise<number>((resolve) => {
    sock.once('close', () => {
      io.stdin.off('data', forward);
      io.stdin.off('end', onEnd);
      io.stdin.pause();
      markFirst();
      resolve(failed ? 255 : 0);
    });
  });
  const forward = (d: Buffer) => {
    if (!sock.write(d)) {
      io.stdin.pause();
      sock.once('drain', () => io.stdin.resume());
    }
  };
  const onEnd = () => sock.end();
  // The student's side went away: nothing more can be delivered, so the connection goes too.
  const gone = () => sock.destroy();
  io.stdin.on('data', forward);
  io.stdin.once('end', onEnd);
  io.stdin.once('error', gone);
  io.stdout.once('error', gone);
  sock.pipe(io.stdout, { end: false });
  io.stdin.resume();
  sock.resume();
  return { done, firstByte, close: () => sock.destroy() };
}
