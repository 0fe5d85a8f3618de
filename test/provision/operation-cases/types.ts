import type { OsFacts } from '../../../src/provision/types.js';

/** Expected command, with put content as text for readability. */
export type ExpectedCommand =
  | { kind: 'shell'; script: string }
  | { kind: 'put'; path: string; content: string; mode?: string; owner?: string; group?: string };

export interface OperationCase {
  name: string;
  op: string;
  args: Record<string, unknown>;
  /** Gathered facts by key ("file:/etc/x"). Every fact the operation requests must be here. */
  facts?: Record<string, unknown>;
  os?: Partial<OsFacts>;
  diff?: boolean;
  /** Commands planned; [] means "already so". */
  commands?: ExpectedCommand[];
  /** Substring of the reason shown to the user. */
  reason?: string;
  /** Facts after the plan (predicted state), by key. */
  effects?: Record<string, unknown>;
  /** The error expected instead of a plan (regex source, matched against the message). */
  error?: string;
}
