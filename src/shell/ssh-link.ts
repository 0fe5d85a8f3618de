import type { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import type { Client, ClientChannel } from 'ssh2';
import { VzsbError } from '../common/errors.js';
import { fingerprintOf, parsePublicKey } from '../daemons/common/ssh-key.js';
import type { Request } from './invocation.js';

/**
 * The gateway's half of the student's session: an ssh2 client to root@container that
 * accepts exactly the host key the hypervisor reported, and relays the student's terminal
 * (or command, or sftp stream) to it.
 */
export interface LinkTarget {
  address: string;
  port: number;
  hostKeyFingerprint: string;
  /** The host key line from the lease answer, when given: pins the key type to negotiate. */
  hostKey: string | undefined;
  privateKey: string;
  readyTimeoutMs: number;
  /** An open connection to the sshd (from connectWhenReady), used instead of a new one. */
  sock?: Socket;
}

export async function openLink(target: LinkTarget): Promise<Client> {
  const { default: ssh2 } = await import('ssh2');
  let hostKeyType = 'ssh-ed25519';
  if (target.hostKey) {
    const parsed = parsePublicKey(target.hostKey);
    if ('error' in parsed || parsed.fingerprint !== target.hostKeyFingerprint) {
      throw new VzsbError('E_HOSTKEY', 'the lease names a host key that does not match its fingerprint', {
        details: `hostKey ${'error' in parsed ? `unparsable: ${parsed.error}` : parsed.fingerprint} vs hostKeyFingerprint ${target.hostKeyFingerprint}`,
      });
    }
    hostKeyType = parsed.type;
  }
  const client = new ssh2.Client();
  let presented: string | undefined;
  return new Promise<Client>((resolve, reject) => {
    client.once('ready', () => {
      client.removeAllListeners('error');
      client.on('error', () => {});
      resolve(client);
    });
    client.once('error', (err: Error & { level?: string }) => {
      client.end();
      if (presented !== undefined && presented !== target.hostKeyFingerprint) {
        reject(new VzsbError('E_HOSTKEY', 'the container presented a host key other than the one its hypervisor reported', {
          details: `${target.address}:${target.port} presented ${presented}, expected ${target.hostKeyFingerprint}`,
        }));
        return;
      }
      const auth = err.level === 'client-authentication';
      reject(new VzsbError(err.level === 'client-timeout' ? 'E_SSH_TIMEOUT' : 'E_SSH', auth ? 'the container refused the session key' : 'cannot open the ssh connection to the container', {
        details: `${target.address}:${target.port}: ${err.message}`,
        cause: err,
      }));
    });
    client.connect({
      ...(target.sock ? { sock: target.sock } : {}),
      host: target.address,
      port: target.port,
      username: 'root',
      privateKey: target.privateKey,
      // The session key is the only way in: skip ssh2's first "none" attempt (a round trip).
      authHandler: ['publickey'],
      readyTimeout: target.readyTimeoutMs,
      keepaliveInterval: 15_000,
      keepaliveCountMax: 4,
      algorithms: { serverHostKey: [hostKeyType as never] },
      hostVerifier: (key: Buffer) => {
        presented = fingerprintOf(key);
        return presented === target.hostKeyFingerprint;
      },
    });
    client.setNoDelay(true);
  });
}

/**
 * The student's side: the session process's own stdio, or the agent's stand-ins fed by a
 * login's client (agent.ts). `isTTY`, `setRawMode`, `columns`/`rows` and the 'resize' event of
 * stdout are all the relay needs of a terminal.
 */
export interface Terminal {
  stdin: Readable & { isTTY?: boolean; setRawMode?(raw: boolean): unknown };
  stdout: Writable & { isTTY?: boolean; columns?: number; rows?: number };
  stderr: Writable & { isTTY?: boolean };
  term: string;
}

export interface Relay {
  /** Resolves with the exit status to return: the remote one, 128+n for a signal, 255 when unknown. */
  done: Promise<number>;
  /** Called once the first byte from the container reached the student (time to shell). */
  firstByte: Promise<void>;
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ILL: 4, ABRT: 6, FPE: 8, KILL: 9, SEGV: 11, PIPE: 13, ALRM: 14, TERM: 15, USR1: 10, USR2: 12 };

/** Open the channel the request needs and relay it until the container closes it. */
export async function relay(client: Client, request: Request, io: Terminal): Promise<Relay> {
  const tty = io.stdin.isTTY === true;
  const size = (): { rows: number; cols: number } => (io.stdout.isTTY ? { rows: io.stdout.rows || 24, cols: io.stdout.columns || 80 } : { rows: 24, cols: 80 });
  const pty = tty ? { term: io.term, ...size(), width: 0, height: 0 } : undefined;
  let exitStatus: number | undefined;
  let closed: Promise<void> = Promise.resolve();
  const channel = await new Promise<ClientChannel>((resolve, reject) => {
    // ssh2 may emit a fast command's exit status in the same tick as this callback: listen at once.
    const cb = (err: Error | undefined, stream: ClientChannel) => {
      if (err) return reject(new VzsbError('E_SSH', 'the container refused the session', { details: err.message, cause: err }));
      stream.on('exit', (code: number | null, signal?: string) => {
        if (typeof code === 'number') exitStatus = code;
        else if (signal) exitStatus = 128 + (SIGNALS[signal.replace(/^SIG/, '')] ?? 0);
      });
      closed = new Promise((r) => stream.once('close', () => r()));
      resolve(stream);
    };
    switch (request.kind) {
      case 'interactive':
        client.shell(pty ?? false, cb);
        break;
      case 'exec':
      case 'scp':
        client.exec(request.command, pty ? { pty } : {}, cb);
        break;
      case 'sftp':
        client.subsys('sftp', cb);
        break;
      case 'tunnel':
        reject(new VzsbError('E_INTERNAL', 'a tunnel is relayed by tunnel.ts, not over a channel'));
        break;
    }
  });

  let markFirst: () => void = () => {};
  const firstByte = new Promise<void>((r) => (markFirst = r));
  channel.once('data', () => markFirst());
  channel.stderr.once('data', () => markFirst());

  const onResize = () => {
    const s = size();
    channel.setWindow(s.rows, s.cols, 0, 0);
  };
  if (tty) {
    io.stdin.setRawMode?.(true);
    io.stdout.on('resize', onResize);
  }
  const forward = (d: Buffer) => {
    if (!channel.write(d)) {
      io.stdin.pause();
      channel.once('drain', () => io.stdin.resume());
    }
  };
  const onEnd = () => channel.end();
  io.stdin.on('data', forward);
  io.stdin.once('end', onEnd);
  io.stdin.resume();
  channel.pipe(io.stdout, { end: false });
  channel.stderr.pipe(io.stderr, { end: false });
  // The student's side went away (EPIPE, or EIO after a hang-up): close the channel and drop
  // what still comes, since ssh2 reports the close only once its output was read to the end.
  const onOutputError = () => {
    channel.unpipe();
    channel.stderr.unpipe();
    channel.resume();
    channel.stderr.resume();
    channel.close();
  };
  io.stdout.on('error', onOutputError);
  io.stderr.on('error', onOutputError);
  io.stdin.on('error', onOutputError);

  const done = closed.then(() => {
    io.stdin.off('data', forward);
    io.stdin.off('end', onEnd);
    io.stdin.pause();
    io.stdout.off('error', onOutputError);
    io.stderr.off('error', onOutputError);
    io.stdin.off('error', onOutputError);
    if (tty) {
      io.stdout.off('resize', onResize);
      try {
        io.stdin.setRawMode?.(false);
      } catch {
        // the terminal is gone (hang-up)
      }
    }
    markFirst();
    return exitStatus ?? 255;
  });
  return { done, firstByte };
}
