import { closeSync, fstatSync, openSync, statSync, writeSync } from 'node:fs';
import { chmod, stat, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { Readable, Writable } from 'node:stream';
import { VzsbError } from '../common/errors.js';
import { createLogger, type Level, type Logger } from '../common/log.js';
import { encodeFrame, FrameDecoder, FrameError, parseHello, parseWindow, type Hello } from './agent-protocol.js';
import { cleanUpDeadSessions } from './agent-cleanup.js';
import { agentSocketPath } from './agent-paths.js';
import { loadGatewayConfig } from './config.js';
import { runSession, type SessionContext } from './session.js';
import { studentLine } from './student-message.js';
import type { Terminal } from './ssh-link.js';
import { InstalledKeys } from './tunnel.js';

/**
 * The gateway's session agent: one long-lived process of the service user that runs every
 * student session, so that a login costs the gateway a small client (sh, sudo, perl: a few
 * milliseconds of CPU) instead of starting Node (70-100 ms of CPU each, which a class logging
 * in at once pays 30 times over on a 2-core gateway). It listens on `<sessionsDir>/agent.sock`
 * in the service user's 0700 directory: only processes of the service user reach it, and
 * students become that user only through the sudo rule that runs the client with the
 * environment reset, so SUDO_USER in the client's hello is sudo's word, as it is for the
 * standalone session process. Each connection runs the same `runSession` as that process,
 * with the client's stdio carried in frames (agent-protocol.ts).
 *
 * The config is read once and again whenever the file changes (checked at each login); the log
 * file is reopened when it was rotated. On SIGTERM the agent stops accepting (new logins then
 * run as standalone session processes: the client falls back when the socket is gone) and
 * lets open sessions finish for up to `drainMs`, then ends the rest as a hang-up would.
 */
export interface AgentOptions {
  configPath: string;
  /** Default: `<sessionsDir>/agent.sock` of the config. */
  socketPath?: string;
  /** How long open sessions may go on after SIGTERM. Default: the config's agentDrainSeconds. */
  drainMs?: number;
  /** Until the first frame of a connection (a client sends it at once). */
  helloTimeoutMs?: number;
  /** Connections at once. */
  maxConnections?: number;
}

export interface Agent {
  socketPath: string;
  /** Sessions running now. */
  sessions(): number;
  /** Read the config again and reopen the log (SIGHUP). */
  reload(): void;
  /** Stop accepting; resolves when every session ended (or was ended after drainMs). */
  stop(): Promise<void>;
}

/** How long the last output may take to reach a client before the exit status goes anyway. */
const FLUSH_MS = 10_000;
const SIGNALS: Record<string, NodeJS.Signals> = { HUP: 'SIGHUP', TERM: 'SIGTERM', INT: 'SIGINT', QUIT: 'SIGQUIT' };

export async function startAgent(options: AgentOptions): Promise<Agent> {
  const contexts = new ContextCache(options.configPath);
  const first = await contexts.get();
  const log = () => contexts.current?.logger ?? first.logger;
  const socketPath = options.socketPath ?? agentSocketPath(first.config);
  const drainMs = options.drainMs ?? first.config.agentDrainSeconds * 1000;
  const helloTimeoutMs = options.helloTimeoutMs ?? 5000;

  const live = new Map<Socket, (signal: NodeJS.Signals) => void>();
  const connections = new Set<Socket>();
  const server: Server = createServer((sock) => {
    connections.add(sock);
    sock.once('close', () => connections.delete(sock));
    handleConnection(sock, { contexts, configPath: options.configPath, helloTimeoutMs, log, live });
  });
  server.maxConnections = options.maxConnections ?? 4096;
  server.on('error', (err) => log().error('agent.error', { error: err }));
  await removeStaleSocket(socketPath);
  // Sessions of an agent that died: their markers and leases, before new logins come in.
  await cleanUpDeadSessions(first.config, first.logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ path: socketPath, backlog: 511 }, () => {
      server.off('error', reject);
      resolve();
    });
  });
  // The directory keeps students out; the socket itself is the service user's alone too.
  await chmod(socketPath, 0o600);
  log().info('agent.listening', { socket: socketPath, pid: process.pid });

  const within = (ms: number, p: Promise<void>) => {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([p.then(() => true), new Promise<boolean>((r) => (timer = setTimeout(() => r(false), ms)))]).finally(() => clearTimeout(timer));
  };
  let stopping: Promise<void> | undefined;
  return {
    socketPath,
    sessions: () => live.size,
    reload: () => {
      contexts.reload();
      log().info('agent.reload', {});
    },
    stop: () =>
      (stopping ??= (async () => {
        // Closing the server removes the socket (clients from now on run standalone sessions);
        // its callback comes once every connection, so every session, has ended.
        const closed = new Promise<void>((r) => server.close(() => r()));
        log().info('agent.draining', { sessions: live.size, drainMs });
        if (!(await within(drainMs, closed))) {
          log().warn('agent.drain-timeout', { sessions: live.size });
          for (const end of live.values()) end('SIGHUP');
          if (!(await within(5000, closed))) for (const sock of connections) sock.destroy();
          await closed;
        }
        log().info('agent.stopped', {});
        contexts.close();
      })()),
  };
}

interface ConnectionEnv {
  contexts: ContextCache;
  configPath: string;
  helloTimeoutMs: number;
  log: () => Logger;
  live: Map<Socket, (signal: NodeJS.Signals) => void>;
}

/** One login: the hello, then the session with the client's stdio, then its exit status. */
function handleConnection(sock: Socket, env: ConnectionEnv): void {
  const decoder = new FrameDecoder();
  let hello: Hello | undefined;
  let terminal: FramedTerminal | undefined;
  let endHandler: ((signal: NodeJS.Signals) => void) | undefined;
  let pendingSignal: NodeJS.Signals | undefined;
  let closed = false;
  const signal = (s: NodeJS.Signals) => {
    if (endHandler) endHandler(s);
    else pendingSignal ??= s;
  };
  const helloTimer = setTimeout(() => {
    env.log().warn('agent.no-hello', { ms: env.helloTimeoutMs });
    sock.destroy();
  }, env.helloTimeoutMs);

  sock.on('error', () => {});
  sock.on('close', () => {
    closed = true;
    clearTimeout(helloTimer);
    terminal?.closed();
    // The client went away (killed, or its terminal hung up without a word): as a hang-up.
    signal('SIGHUP');
  });
  sock.on('data', (chunk: Buffer) => {
    let frames;
    try {
      frames = decoder.push(chunk);
    } catch (err) {
      env.log().warn('agent.bad-frame', { error: err, user: hello?.env.SUDO_USER });
      sock.destroy();
      return;
    }
    for (const frame of frames) {
      if (!hello) {
        if (frame.type !== 'H') {
          env.log().warn('agent.bad-frame', { error: new FrameError(`expected a hello first, got ${frame.type}`) });
          sock.destroy();
          return;
        }
        try {
          hello = parseHello(frame.payload);
        } catch (err) {
          env.log().warn('agent.bad-hello', { error: err });
          sock.destroy();
          return;
        }
        clearTimeout(helloTimer);
        terminal = new FramedTerminal(sock, hello);
        start(hello, terminal);
        continue;
      }
      switch (frame.type) {
        case 'I':
          terminal!.input(frame.payload);
          break;
        case 'E':
          terminal!.endInput();
          break;
        case 'W': {
          const size = parseWindow(frame.payload);
          if (size) terminal!.resize(size);
          break;
        }
        case 'S': {
          const name = SIGNALS[frame.payload.toString('latin1')];
          if (name) signal(name);
          break;
        }
        default:
          // A second hello: ignored.
          break;
      }
    }
  });

  const start = (h: Hello, io: FramedTerminal) => {
    env.live.set(sock, signal);
    runSession({
      env: h.env,
      io: io.terminal,
      configPath: env.configPath,
      context: () => env.contexts.get(),
      pid: h.pid,
      onEndSignal: (handler) => {
        endHandler = handler;
        if (pendingSignal) queueMicrotask(() => handler(pendingSignal!));
        return () => {
          endHandler = undefined;
        };
      },
    })
      .catch((err: unknown) => {
        env.log().error('agent.session-failed', { error: err, user: h.env.SUDO_USER, pid: h.pid });
        if (!closed) io.terminal.stderr.write(studentLine(err).replace(/\n$/, '\r\n'));
        return 255;
      })
      .then(async (status) => {
        // What the session wrote goes out before the exit status (a client may read slowly).
        await io.flush(FLUSH_MS);
        if (!closed) sock.end(encodeFrame('x', String(status)));
        env.live.delete(sock);
      });
  };
}

/**
 * The student's stdio as the session sees it: stdin fed by I/E frames (with backpressure:
 * a full buffer pauses the client's socket), stdout/stderr written as o/e frames (waiting
 * for the socket to drain), raw mode and window size carried as m frames and W frames.
 */
class FramedTerminal {
  readonly terminal: Terminal;
  private readonly waiting: ((err?: Error | null) => void)[] = [];
  private gone = false;
  private inputEnded = false;
  private readonly outputs: Writable[];
  private readonly stdin: Readable & { isTTY: boolean; setRawMode(raw: boolean): unknown };
  private readonly stdout: Writable & { isTTY: boolean; columns: number; rows: number };

  constructor(
    private readonly sock: Socket,
    hello: Hello,
  ) {
    const send = (type: string, data: Buffer | string) => this.send(type, data);
    this.stdin = Object.assign(
      new Readable({
        highWaterMark: 256 * 1024,
        read: () => {
          if (!this.gone) sock.resume();
        },
      }),
      { isTTY: hello.tty.stdin, setRawMode: (raw: boolean) => send('m', raw ? 'raw' : 'cooked') },
    );
    const output = (type: 'o' | 'e') =>
      new Writable({
        write: (chunk: Buffer, _enc, cb) => this.write(type, chunk, cb),
        writev: (chunks, cb) => this.write(type, Buffer.concat(chunks.map((c) => c.chunk as Buffer)), cb),
      });
    this.stdout = Object.assign(output('o'), { isTTY: hello.tty.stdout, columns: hello.cols, rows: hello.rows });
    const stderr = Object.assign(output('e'), { isTTY: hello.tty.stderr });
    sock.on('drain', () => this.flushWaiting());
    this.outputs = [this.stdout, stderr];
    // Errors are the relay's business while it runs; before and after, nobody must be hurt by one.
    for (const stream of [this.stdin, ...this.outputs]) stream.on('error', () => {});
    this.terminal = { stdin: this.stdin, stdout: this.stdout, stderr, term: hello.env.TERM ?? 'xterm-256color' };
  }

  input(data: Buffer): void {
    if (this.inputEnded) return;
    if (!this.stdin.push(Buffer.from(data))) this.sock.pause();
  }

  endInput(): void {
    if (this.inputEnded) return;
    this.inputEnded = true;
    this.stdin.push(null);
  }

  /** Resolves once everything written to stdout and stderr reached the socket (or after `ms`). */
  async flush(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const finished = (w: Writable) =>
      new Promise<void>((resolve) => {
        if (w.writableFinished || w.destroyed) return resolve();
        w.once('finish', resolve);
        w.once('error', () => resolve());
        w.once('close', resolve);
        w.end();
      });
    await Promise.race([Promise.all(this.outputs.map(finished)), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
  }

  resize(size: { cols: number; rows: number }): void {
    this.stdout.columns = size.cols;
    this.stdout.rows = size.rows;
    this.stdout.emit('resize');
  }

  /** The client is gone: output fails from now on, input ends. */
  closed(): void {
    this.gone = true;
    this.endInput();
    this.flushWaiting(new Error('the login client closed the connection'));
  }

  private send(type: string, data: Buffer | string): boolean {
    if (this.gone) return true;
    return this.sock.write(encodeFrame(type, data));
  }

  private write(type: 'o' | 'e', chunk: Buffer, cb: (err?: Error | null) => void): void {
    if (this.gone) return cb(new Error('the login client closed the connection'));
    // Frames stay under the protocol's limit whatever the stream hands over.
    let ok = true;
    for (let at = 0; at < chunk.length; at += 65536) ok = this.send(type, chunk.subarray(at, at + 65536));
    if (ok) cb();
    else this.waiting.push(cb);
  }

  private flushWaiting(err?: Error): void {
    for (const cb of this.waiting.splice(0)) cb(err);
  }
}

/**
 * The config and the log, shared by the sessions: read again when the config file's identity
 * or time changes; the log reopened when its file was replaced (rotation) or renamed.
 */
class ContextCache {
  current: SessionContext | undefined;
  private key = '';
  private logPath = '';
  private fd: number | undefined;
  private level: Level = 'info';
  private secrets: readonly string[] = [];
  private readonly installedKeys = new InstalledKeys();

  constructor(private readonly path: string) {}

  async get(): Promise<SessionContext> {
    let key: string;
    try {
      const st = await stat(this.path);
      key = `${st.dev}:${st.ino}:${st.mtimeMs}:${st.size}`;
    } catch (err) {
      throw new VzsbError('E_CONFIG', `cannot read ${this.path}: ${(err as Error).message}`, { cause: err });
    }
    if (!this.current || key !== this.key) {
      const config = await loadGatewayConfig(this.path);
      this.key = key;
      this.level = config.logLevel;
      this.secrets = [config.token];
      this.openLog(config.logFile);
      this.current = { config, logger: this.makeLogger(), installedKeys: this.installedKeys };
    } else if (this.logMoved()) {
      this.openLog(this.logPath);
      this.current = { ...this.current, logger: this.makeLogger() };
    }
    return this.current;
  }

  /** Read the config and reopen the log at the next login (SIGHUP). */
  reload(): void {
    this.key = '';
    this.logPath && this.openLog(this.logPath);
  }

  close(): void {
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
  }

  private openLog(path: string): void {
    // Every logger writes through this.fd, so the old descriptor can go at once.
    const old = this.fd;
    try {
      this.fd = openSync(path, 'a', 0o640);
    } catch {
      this.fd = undefined;
    }
    this.logPath = path;
    if (old !== undefined) closeSync(old);
  }

  private logMoved(): boolean {
    if (this.fd === undefined) return true;
    try {
      const open = fstatSync(this.fd);
      const named = statSync(this.logPath);
      return open.ino !== named.ino || open.dev !== named.dev;
    } catch {
      return true;
    }
  }

  private makeLogger(): Logger {
    return createLogger({
      level: this.level,
      base: { component: 'gateway', via: 'agent' },
      secrets: this.secrets,
      write: (line) => {
        if (this.fd === undefined) return;
        try {
          writeSync(this.fd, line + '\n');
        } catch {
          // a full disk must not end a session
        }
      },
    });
  }
}

/** A socket file left by an agent that died is removed; one that answers means an agent runs. */
async function removeStaleSocket(path: string): Promise<void> {
  const st = await stat(path).catch(() => undefined);
  if (!st) return;
  if (!st.isSocket()) throw new VzsbError('E_INVALID', `${path} exists and is not a socket; remove it or choose another sessionsDir`);
  const answering = await new Promise<boolean>((resolve) => {
    const probe = createConnection(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve(true);
    });
    probe.once('error', () => resolve(false));
  });
  if (answering) throw new VzsbError('E_RUNNING', `another session agent listens on ${path}`);
  await unlink(path);
}
