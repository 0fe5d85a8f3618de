import type { ErrorCode } from './error-catalog.js';

export type { ErrorCode } from './error-catalog.js';

/**
 * One error root for the whole project. `message` is safe to show to the end user
 * (a student, an admin at the terminal); `details` is for the operator's log only.
 * `code` is stable: scripts and the student's error line use it; every code is in
 * error-catalog.ts, with what it means and how the daemons answer it.
 */
export class VzsbError extends Error {
  readonly code: ErrorCode;
  readonly details: string | undefined;

  constructor(code: ErrorCode, message: string, options: { details?: string; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'VzsbError';
    this.code = code;
    this.details = options.details;
  }
}

/** A value read from a file or a request did not have the expected shape. `path` is dotted. */
export class ValidationError extends VzsbError {
  readonly path: string;
  readonly source: string | undefined;

  constructor(path: string, expected: string, got: unknown, source?: string) {
    const where = source ? `${source}: ` : '';
    super('E_INVALID', `${where}${path || '(root)'}: expected ${expected}, got ${describe(got)}`);
    this.name = 'ValidationError';
    this.path = path;
    this.source = source;
  }
}

export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? value.slice(0, 57) + '...' : value);
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'a mapping';
  return `${typeof value} ${String(value)}`;
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
