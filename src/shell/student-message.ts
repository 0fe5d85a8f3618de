import { studentSentence } from '../common/error-catalog.js';
import { VzsbError, type ErrorCode } from '../common/errors.js';

/** Shown while the host of the student's sandbox is down and the login waits for it. */
export const WAITING_FOR_HOST = 'The host of your sandbox does not answer; waiting for it to come back (your work there is kept)...';

/** Shown when the login got a new container because the old one's host did not come back in time. */
export const MOVED_LINE =
  "vzsb: The host of your sandbox did not come back in time: this is a new, empty sandbox. The old one will be ended when its host is back.\n";

/**
 * The one line a student sees when a login fails: what happened in their words, what to do,
 * and a stable code to quote to the instructor (the sentences are the error catalog's). The
 * details go to the gateway log only.
 */
export function studentCode(err: unknown): ErrorCode {
  return err instanceof VzsbError && studentSentence(err.code) !== undefined ? err.code : 'E_INTERNAL';
}

export function studentLine(err: unknown): string {
  const code = studentCode(err);
  const extra = code === 'E_USAGE' && err instanceof VzsbError ? ` (${err.message})` : '';
  return `vzsb: ${studentSentence(code)}${extra} [${code}]\n`;
}
