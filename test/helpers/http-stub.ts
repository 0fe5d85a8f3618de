import { once } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';

/** A stand-in HTTP server on loopback (a balancer that fails, hangs or answers as told), closed by the test's teardown. */
export async function stubServer(t: { teardown(fn: () => void): void }, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<string> {
  const s = createServer(handler);
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  t.teardown(() => {
    s.closeAllConnections();
    s.close();
  });
  return `http://127.0.0.1:${(s.address() as { port: number }).port}`;
}

/** A loopback URL where nothing listens (the port was free a moment ago). */
export async function deadUrl(): Promise<string> {
  const s = createServer();
  s.listen(0, '127.0.0.1');
  await once(s, 'listening');
  const url = `http://127.0.0.1:${(s.address() as { port: number }).port}`;
  s.close();
  await once(s, 'close');
  return url;
}

/** A handler that reads the request and answers `status` with `body` as JSON. */
export const reply = (status: number, body: unknown) => (req: IncomingMessage, res: ServerResponse) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
};
