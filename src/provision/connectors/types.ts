import type { CommandResult } from '../../common/exec.js';
import { VzsbError } from '../../common/errors.js';

export interface ConnectionStats {
  /** Scripts run after connecting (each is one request/response exchange). */
  roundTrips: number;
  /** SSH channels opened (exec sessions and forwards). */
  channels: number;
  bytesSent: number;
  bytesReceived: number;
  connectMs: number;
}

export interface RunScriptOptions {
  become: boolean;
  becomeUser?: string;
}

/** One connection to one host. Never throws on a non-zero exit: the runner decides. */
export interface Connection {
  readonly host: string;
  readonly stats: ConnectionStats;
  /** Run a POSIX sh script sent on stdin: one round trip. */
  run(script: string, options: RunScriptOptions): Promise<CommandResult>;
  close(): Promise<void>;
}

/** The host could not be reached or logged into: the runner reports it unreachable. */
export class UnreachableError extends VzsbError {
  constructor(host: string, reason: string, cause?: unknown) {
    super('E_UNREACHABLE', `${host}: unreachable: ${reason}`, { cause });
    this.name = 'UnreachableError';
  }
}

export function newStats(): ConnectionStats {
  return { roundTrips: 0, channels: 0, bytesSent: 0, bytesReceived: 0, connectMs: 0 };
}

/** The remote command line that reads the script from stdin, with become through sudo. */
export function shellCommand(loginUser: string, options: RunScriptOptions): string {
  const target = options.becomeUser ?? 'root';
  if (!options.become || loginUser === target) return 'sh -s';
  return `sudo -n -H -u ${target} -- sh -s`;
}
