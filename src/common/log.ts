import stdSerializers from 'pino-std-serializers';

/**
 * JSON logs, one event per line: `{time, level, event, ...base, ...fields}`.
 *
 * An Error anywhere in the fields is written whole, for the operator: its type, message, code,
 * `details` (a failed command's stderr, see VzsbError), stack and the same again for each error
 * of its `cause` chain (pino's error serializer). Long strings in an error keep their start and
 * their end, so that a line stays one line for journald.
 *
 * Secrets never enter a log line: a field whose name says it is one (token, secret, password,
 * authorization, private) is replaced at any depth, errors included; and the `secrets` values
 * (the daemon's tokens), bearer credentials and PEM private keys are masked wherever they occur
 * in the line, since an error's message or a command's stderr can quote one.
 */
export type Level = 'debug' | 'info' | 'warn' | 'error';
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
const SECRET_KEYS = /token|secret|password|authorization|private/i;
const REDACTED = '[redacted]';
/** The longest string kept whole inside a logged error (journald splits lines past 48 KiB). */
const ERROR_STRING_MAX = 8192;
const ERROR_STRING_HEAD = 1024;

export interface Logger {
  debug(event: string, fields?: Record<string, unknown>): void;
  info(event: string, fields?: Record<string, unknown>): void;
  warn(event: string, fields?: Record<string, unknown>): void;
  error(event: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: Level;
  write?: (line: string) => void;
  now?: () => Date;
  base?: Record<string, unknown>;
  /** Values masked wherever they appear in a line (tokens of the daemon's config). */
  secrets?: readonly string[];
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stderr.write(line + '\n'));
  const now = options.now ?? (() => new Date());
  const base = options.base ?? {};
  const mask = masker(options.secrets ?? []);
  const emit = (level: Level, event: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < min) return;
    const record: Record<string, unknown> = { time: now().toISOString(), level, event, ...base, ...fields };
    write(mask(toLine(record)));
  };
  return {
    debug: (e, f) => emit('debug', e, f),
    info: (e, f) => emit('info', e, f),
    warn: (e, f) => emit('warn', e, f),
    error: (e, f) => emit('error', e, f),
    child: (fields) => createLogger({ ...options, base: { ...base, ...fields } }),
  };
}

/** A logger that drops everything (unit tests). */
export const silentLogger: Logger = createLogger({ write: () => {} });

function toLine(record: Record<string, unknown>): string {
  try {
    return JSON.stringify(record, replacer);
  } catch (err) {
    // A field that cannot be written (a cycle, a BigInt) must not lose the event.
    const { time, level, event } = record;
    return JSON.stringify({ time, level, event, logError: `fields not written: ${err instanceof Error ? err.message : String(err)}` });
  }
}

function replacer(this: unknown, key: string, value: unknown): unknown {
  if (key !== '' && SECRET_KEYS.test(key)) return REDACTED;
  if (value instanceof Error) return serializeError(value);
  return value;
}

/** pino's serializer with the cause chain as nested objects, plus a cause that is no Error. */
function serializeError(err: Error): Record<string, unknown> {
  const out = stdSerializers.errWithCause(err) as unknown as Record<string, unknown>;
  const cause = (err as { cause?: unknown }).cause;
  if (cause !== undefined && out.cause === undefined) out.cause = cause;
  clipStrings(out, Object.getPrototypeOf(out) as object);
  return out;
}

/** Clips long strings in a serialized error and the serialized errors in it (never the caller's objects). */
function clipStrings(serialized: Record<string, unknown>, proto: object): void {
  for (const [k, v] of Object.entries(serialized)) {
    if (typeof v === 'string' && v.length > ERROR_STRING_MAX) serialized[k] = clip(v);
    const nested = k === 'aggregateErrors' && Array.isArray(v) ? v : [v];
    for (const n of nested) if (n && typeof n === 'object' && Object.getPrototypeOf(n) === proto) clipStrings(n as Record<string, unknown>, proto);
  }
}

function clip(s: string): string {
  const tail = ERROR_STRING_MAX - ERROR_STRING_HEAD;
  return `${s.slice(0, ERROR_STRING_HEAD)}\n[... ${s.length - ERROR_STRING_MAX} characters left out ...]\n${s.slice(-tail)}`;
}

const BEARER = /\b(Bearer\s+)[^\s"\\]+/gi;
const PRIVATE_KEY = /-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z0-9 ]*PRIVATE KEY-----/g;

/** Masks secret values in a written line, as they appear inside JSON strings. */
function masker(secrets: readonly string[]): (line: string) => string {
  const forms = new Set<string>();
  for (const s of secrets) {
    // Short values would mask ordinary words; every token is at least 16 characters.
    if (s.length < 8) continue;
    forms.add(s);
    forms.add(JSON.stringify(s).slice(1, -1));
  }
  const values = [...forms].sort((a, b) => b.length - a.length);
  return (line) => {
    let out = line;
    for (const v of values) if (out.includes(v)) out = out.split(v).join(REDACTED);
    if (/bearer/i.test(out)) out = out.replace(BEARER, `$1${REDACTED}`);
    if (out.includes('PRIVATE KEY-----')) out = out.replace(PRIVATE_KEY, '[redacted private key]');
    return out;
  };
}
