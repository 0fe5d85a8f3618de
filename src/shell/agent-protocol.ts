/**
 * The wire between a login's client (templates/gateway/vzsb-client.pl.hbs, one per login) and
 * the gateway's session agent (agent.ts, one per gateway), over a Unix stream socket that only
 * the service user can reach. Frames both ways: one type byte, a 32-bit big-endian length,
 * the payload. Upper-case types go from the client to the agent, lower-case ones back.
 *
 *   client -> agent                          agent -> client
 *   H  hello: KEY=VALUE pairs split by NUL    o  bytes for the student's stdout
 *   I  bytes from the student's stdin         e  bytes for the student's stderr
 *   E  the student's stdin ended              m  "raw" or "cooked": the terminal mode to set
 *   W  window size: "COLS ROWS"               x  the exit status, in decimal; the agent then closes
 *   S  a signal the client got: "HUP", "TERM", "INT" or "QUIT"
 *
 * The hello carries what sudo kept of the environment (SUDO_USER, TERM, SSH_CLIENT, VZSB_COMMAND,
 * VZSB_HAS_COMMAND) and the client's own facts: `pid`, `tty` (three 0/1 digits for stdin,
 * stdout, stderr), `cols`, `rows`, `v` (the protocol version, 1).
 */
export const PROTOCOL_VERSION = 1;
/** Largest payload either side sends; a bigger length is a broken or hostile peer. */
export const MAX_FRAME = 1024 * 1024;
const HEADER = 5;

export type ClientFrameType = 'H' | 'I' | 'E' | 'W' | 'S';
export type AgentFrameType = 'o' | 'e' | 'm' | 'x';
const CLIENT_TYPES = new Set<string>(['H', 'I', 'E', 'W', 'S']);

export interface Frame<T extends string = string> {
  type: T;
  payload: Buffer;
}

export function encodeFrame(type: string, payload: Buffer | string = Buffer.alloc(0)): Buffer {
  const body = typeof payload === 'string' ? Buffer.from(payload) : payload;
  if (body.length > MAX_FRAME) throw new RangeError(`frame of ${body.length} bytes exceeds ${MAX_FRAME}`);
  const head = Buffer.allocUnsafe(HEADER);
  head.write(type, 0, 1, 'latin1');
  head.writeUInt32BE(body.length, 1);
  return Buffer.concat([head, body]);
}

export class FrameError extends Error {}

/**
 * Splits a byte stream into frames. `accept` limits the types (the agent accepts only the
 * client's); anything else, or a length over MAX_FRAME, throws FrameError.
 */
export class FrameDecoder {
  private buffered: Buffer[] = [];
  private size = 0;

  constructor(private readonly accept: ReadonlySet<string> = CLIENT_TYPES) {}

  push(chunk: Buffer): Frame[] {
    this.buffered.push(chunk);
    this.size += chunk.length;
    if (this.size < HEADER) return [];
    let data = this.buffered.length === 1 ? this.buffered[0]! : Buffer.concat(this.buffered, this.size);
    const frames: Frame[] = [];
    let at = 0;
    while (data.length - at >= HEADER) {
      const type = String.fromCharCode(data[at]!);
      if (!this.accept.has(type)) throw new FrameError(`unknown frame type 0x${data[at]!.toString(16).padStart(2, '0')}`);
      const length = data.readUInt32BE(at + 1);
      if (length > MAX_FRAME) throw new FrameError(`frame of ${length} bytes exceeds ${MAX_FRAME}`);
      if (data.length - at - HEADER < length) break;
      frames.push({ type, payload: data.subarray(at + HEADER, at + HEADER + length) });
      at += HEADER + length;
    }
    data = data.subarray(at);
    this.buffered = data.length ? [data] : [];
    this.size = data.length;
    return frames;
  }
}

export interface Hello {
  /** What sudo kept of the environment, as the standalone session process would see it. */
  env: Record<string, string>;
  pid: number;
  tty: { stdin: boolean; stdout: boolean; stderr: boolean };
  cols: number;
  rows: number;
}

const HELLO_ENV = new Set(['SUDO_USER', 'TERM', 'SSH_CLIENT', 'SSH_CONNECTION', 'SSH_TTY', 'VZSB_COMMAND', 'VZSB_HAS_COMMAND']);

export function parseHello(payload: Buffer): Hello {
  const fields = new Map<string, string>();
  for (const pair of payload.toString('utf8').split('\0')) {
    if (pair === '') continue;
    const eq = pair.indexOf('=');
    if (eq <= 0) throw new FrameError(`hello: expected KEY=VALUE, got ${JSON.stringify(pair.slice(0, 40))}`);
    fields.set(pair.slice(0, eq), pair.slice(eq + 1));
  }
  if (fields.get('v') !== String(PROTOCOL_VERSION)) throw new FrameError(`hello: protocol version ${JSON.stringify(fields.get('v') ?? null)}, this agent speaks ${PROTOCOL_VERSION}`);
  const pid = Number(fields.get('pid'));
  if (!Number.isInteger(pid) || pid <= 1) throw new FrameError(`hello: pid: expected a process id, got ${JSON.stringify(fields.get('pid') ?? null)}`);
  const tty = fields.get('tty') ?? '000';
  if (!/^[01]{3}$/.test(tty)) throw new FrameError(`hello: tty: expected three 0/1 digits, got ${JSON.stringify(tty)}`);
  const env: Record<string, string> = {};
  for (const [k, v] of fields) if (HELLO_ENV.has(k)) env[k] = v;
  return { env, pid, tty: { stdin: tty[0] === '1', stdout: tty[1] === '1', stderr: tty[2] === '1' }, cols: dimension(fields.get('cols'), 80), rows: dimension(fields.get('rows'), 24) };
}

/** "COLS ROWS" of a W frame; undefined when malformed. */
export function parseWindow(payload: Buffer): { cols: number; rows: number } | undefined {
  const m = /^(\d{1,5}) (\d{1,5})$/.exec(payload.toString('latin1'));
  if (!m) return undefined;
  return { cols: dimension(m[1], 80), rows: dimension(m[2], 24) };
}

/** A size of 0 (unknown, e.g. a terminal that never set one) becomes the usual default. */
function dimension(text: string | undefined, fallback: number): number {
  const n = Number(text);
  return Number.isInteger(n) && n > 0 && n <= 10_000 ? n : fallback;
}

/** Builds a hello payload (tests; the real client is the Perl script). */
export function encodeHello(fields: Record<string, string | number>): Buffer {
  return Buffer.from(Object.entries(fields).map(([k, v]) => `${k}=${v}`).join('\0'));
}
