import { VzsbError } from '../common/errors.js';

/**
 * The one line a student sees when a login fails: what happened in their words, what to do,
 * and a stable code to quote to the instructor. The details go to the gateway log only.
 */
const ADVICE: Record<string, string> = {
  E_NO_CAPACITY: 'All sandboxes are in use right now. Try again in a minute.',
  E_BALANCER_DOWN: 'The sandbox service does not answer. Try again in a minute; tell your instructor if it lasts.',
  E_GATEWAY_AUTH: 'The gateway is not allowed to ask for sandboxes. Tell your instructor.',
  E_LEASE_REFUSED: 'The sandbox service refused the request. Tell your instructor.',
  E_SSH_TIMEOUT: 'Your sandbox did not start in time. Try again.',
  E_HOSTKEY: 'Your sandbox could not prove its identity, so the connection was refused. Tell your instructor.',
  E_SSH: 'The connection to your sandbox failed. Try again.',
  E_CONFIG: 'The gateway is misconfigured. Tell your instructor.',
  E_IDENTITY: 'This account cannot have a sandbox.',
  E_TOO_MANY: 'You have too many sessions open. Close one and try again.',
  E_BUSY: 'The sandbox service is busy right now. Try again in a moment.',
  E_HOLDER_DOWN: 'The host of your sandbox is restarting and did not come back in time. Try again in a minute; tell your instructor if it lasts.',
  E_USAGE: 'That request is not supported here.',
  E_INTERNAL: 'Something went wrong on the gateway. Try again; tell your instructor if it lasts.',
};

/** Shown while the host of the student's sandbox is down and the login waits for it. */
export const WAITING_FOR_HOST = 'The host of your sandbox does not answer; waiting for it to come back (your work there is kept)...';

/** Shown when the login got a new container because the old one's host did not come back in time. */
export const MOVED_LINE =
  "vzsb: The host of your sandbox did not come back in time: this is a new, empty sandbox. The old one will be ended when its host is back.\n";

export function studentCode(err: unknown): string {
  return err instanceof VzsbError && ADVICE[err.code] ? err.code : 'E_INTERNAL';
}

export function studentLine(err: unknown): string {
  const code = studentCode(err);
  const extra = code === 'E_USAGE' && err instanceof VzsbError ? ` (${err.message})` : '';
  return `vzsb: ${ADVICE[code]}${extra} [${code}]\n`;
}
