import { connect } from 'node:net';

/**
 * Resolve true once a TCP connection to address:port gets an SSH identification line
 * ("SSH-2.0-..."), polling until the deadline. A port that accepts but does not speak
 * SSH yet (sshd still starting, a half-up network) counts as not ready.
 */
export async function waitForSshBanner(address: string, port: number, timeoutMs: number, intervalMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const left = deadline - Date.now();
    if (await readBanner(address, port, Math.min(2000, Math.max(left, 1))).then((b) => b !== undefined)) return true;
    await new Promise((r) => setTimeout(r, Math.min(intervalMs, Math.max(deadline - Date.now(), 0))));
  }
  return false;
}

/** The SSH identification line the server sends first, or undefined. */
export function readBanner(address: string, port: number, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    let buf = '';
    let settled = false;
    const socket = connect({ host: address, port });
    const done = (value: string | undefined) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve(value);
    };
    const timer = setTimeout(() => done(undefined), timeoutMs);
    socket.setEncoding('latin1');
    socket.on('data', (chunk: string) => {
      buf += chunk;
      const line = buf.split('\n').find((l) => l.startsWith('SSH-'));
      if (line) done(line.trim());
      else if (buf.length > 8192) done(undefined);
    });
    socket.on('error', () => done(undefined));
    socket.on('close', () => done(undefined));
  });
}
