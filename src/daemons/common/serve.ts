import { once } from 'node:events';
import type { Server } from 'node:http';
import { createServer, STATUS_CODES } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import type Koa from 'koa';
import { z } from 'zod';
import { commonHttpStatus, type ErrorCode } from '../../common/error-catalog.js';
import type { Logger } from '../../common/log.js';
import { MAX_URL_LENGTH } from './http.js';

/**
 * `serve(app)` owns the listening socket and the process signals: on SIGTERM or SIGINT it stops
 * accepting, lets requests in flight finish (bounded), runs `onStop`, and resolves `stopped`.
 * It never calls process.exit: the CLI entry turns the outcome into an exit code.
 */
export const listenSchema = z.strictObject({
  host: z.string().min(1).default('127.0.0.1'),
  port: z.number().int().min(0).max(65535).default(8750),
});
export type Listen = z.infer<typeof listenSchema>;

export interface ServeOptions {
  listen: Listen;
  logger: Logger;
  /** Runs after the server stopped accepting and in-flight requests ended (stop jobs, flush state). */
  onStop?: () => Promise<void>;
  /** Requests still running after this long are cut. Default 10 s. */
  drainMs?: number;
  /** Install SIGTERM/SIGINT handlers. Default true. */
  signals?: boolean;
}

export interface Served {
  server: Server;
  host: string;
  port: number;
  url: string;
  /** Start the graceful stop (what a signal does). */
  stop(reason?: string): Promise<void>;
  /** Settles when the stop completed. */
  stopped: Promise<void>;
}

/** A URL that reaches a server listening on `host` from the same machine (wildcards become loopback). */
export function localUrl(host: string, port: number): string {
  const h = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${h.includes(':') ? `[${h}]` : h}:${port}`;
}

export async function serve(app: Koa, options: ServeOptions): Promise<Served> {
  const server = createServer(app.callback());
  server.keepAliveTimeout = 5000;
  server.headersTimeout = 15000;
  server.requestTimeout = 60000;
  server.on('clientError', (err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket) => answerClientError(err, socket, options.logger));
  server.listen(options.listen.port, options.listen.host);
  await Promise.race([
    once(server, 'listening'),
    once(server, 'error').then(([err]) => {
      throw err;
    }),
  ]);
  const addr = server.address() as AddressInfo;
  const log = options.logger;

  let stopping: Promise<void> | undefined;
  let resolveStopped!: () => void;
  const stopped = new Promise<void>((r) => (resolveStopped = r));
  const onSignal = (signal: NodeJS.Signals) => {
    log.info('daemon.signal', { signal });
    void stop(signal);
  };
  const stop = (reason = 'requested'): Promise<void> => {
    stopping ??= (async () => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      const closed = new Promise<void>((r) => server.close(() => r()));
      // Kept-alive connections (the balancers keep theirs open) go as soon as they are idle,
      // also those whose request is still running now: a stop waits for requests, not for clients.
      server.closeIdleConnections();
      const idle = setInterval(() => server.closeIdleConnections(), 50);
      const cut = setTimeout(() => server.closeAllConnections(), options.drainMs ?? 10000);
      await closed;
      clearInterval(idle);
      clearTimeout(cut);
      try {
        await options.onStop?.();
      } catch (err) {
        log.error('daemon.stop_failed', { error: err });
      }
      log.info('daemon.stopped', { reason });
      resolveStopped();
    })();
    return stopping;
  };
  if (options.signals !== false) {
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  }
  // Only now: whoever waits for this line may signal us at once.
  log.info('daemon.listening', { address: addr.address, port: addr.port, pid: process.pid });
  return { server, host: addr.address, port: addr.port, url: localUrl(addr.address, addr.port), stop, stopped };
}

/**
 * A request Node's parser refused before any route saw it: a clear status and JSON body, then
 * the connection closed (instead of Node's bare reset). A request line longer than the header
 * limit is 414, other oversize headers 431, a timeout 408, anything else 400.
 */
function answerClientError(err: NodeJS.ErrnoException & { rawPacket?: Buffer }, socket: Socket, log: Logger): void {
  if (err.code === 'ECONNRESET' || !socket.writable) {
    socket.destroy();
    return;
  }
  let code: ErrorCode = 'E_BAD_REQUEST';
  let message = 'the request could not be parsed';
  if (err.code === 'HPE_HEADER_OVERFLOW') {
    const raw = err.rawPacket?.toString('latin1') ?? '';
    const lineEnd = raw.indexOf('\r\n');
    if (lineEnd < 0 || lineEnd > MAX_URL_LENGTH) {
      code = 'E_URI_TOO_LONG';
      message = `the request URL is longer than ${MAX_URL_LENGTH} bytes`;
    } else {
      code = 'E_HEADERS_TOO_LARGE';
      message = 'the request headers are too large';
    }
  } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
    code = 'E_TIMEOUT';
    message = 'the request was not sent in time';
  }
  const status = commonHttpStatus(code);
  log.info('http.rejected', { status, code, parser: err.code });
  const body = JSON.stringify({ error: { code, message } });
  socket.end(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`);
  setTimeout(() => socket.destroy(), 2000).unref();
}
