import { VzsbError } from '../common/errors.js';

/**
 * What the student asked for, read from the environment that sudo kept. sudo sets SUDO_USER
 * from the real uid of the caller and drops every variable the sudoers rule does not keep, so
 * the user name cannot be chosen by the student; the other variables are the student's own
 * words and are treated as such (checked, bounded, only ever sent to the student's container).
 */
export type Request =
  | { kind: 'interactive' }
  | { kind: 'exec'; command: string }
  | { kind: 'sftp' }
  | { kind: 'scp'; command: string }
  /** The student's own ssh client to the container's sshd, byte for byte (tunnel.ts). */
  | { kind: 'tunnel' };

export interface Invocation {
  user: string;
  request: Request;
  /** TERM for the remote PTY. */
  term: string;
  /** "address port" of the student's end, from SSH_CLIENT, for the log only. */
  source: string | undefined;
}

/** The variable the wrapper passes the `-c` command in (sshd runs `shell -c "command"`). */
export const COMMAND_VAR = 'VZSB_COMMAND';
/** The wrapper sets it to 1 when it was called with -c, so `ssh gw ''` differs from a plain login. */
export const HAS_COMMAND_VAR = 'VZSB_HAS_COMMAND';
/**
 * What sshd runs for `ssh -s STUDENT@GATEWAY vzsb-tunnel` (the gateway's `Subsystem vzsb-tunnel
 * vzsb-tunnel` line): as for every subsystem, the user's shell with `-c vzsb-tunnel`.
 */
export const TUNNEL_COMMAND = 'vzsb-tunnel';
/** Variables the sudoers rule keeps; everything else is dropped by env_reset. */
export const KEPT_VARS = ['TERM', 'SSH_CLIENT', 'SSH_CONNECTION', 'SSH_TTY', COMMAND_VAR, HAS_COMMAND_VAR] as const;

const USER = /^[a-z_][a-z0-9_-]{0,31}$/;
const MAX_COMMAND = 64 * 1024;

export function readInvocation(env: NodeJS.ProcessEnv): Invocation {
  const user = env.SUDO_USER;
  if (!user) throw new VzsbError('E_IDENTITY', 'this program is the sandbox login shell; it runs only through the vzsb-shell wrapper', { details: 'SUDO_USER is not set: not started by sudo' });
  if (!USER.test(user)) throw new VzsbError('E_IDENTITY', 'your user name cannot have a sandbox', { details: `SUDO_USER ${JSON.stringify(user.slice(0, 40))} is not a valid Unix user name` });
  if (user === 'root') throw new VzsbError('E_IDENTITY', 'root has no sandbox', { details: 'SUDO_USER is root' });
  const term = env.TERM && /^[A-Za-z0-9._+-]{1,64}$/.test(env.TERM) ? env.TERM : 'xterm-256color';
  const client = env.SSH_CLIENT && /^[0-9A-Fa-f.:%a-z]{1,64} \d{1,5} \d{1,5}$/.test(env.SSH_CLIENT) ? env.SSH_CLIENT.split(' ').slice(0, 2).join(' ') : undefined;
  return { user, request: classify(env[HAS_COMMAND_VAR] === '1' ? (env[COMMAND_VAR] ?? '') : undefined), term, source: client };
}

/**
 * sftp-server and scp are what sshd runs for `sftp`, `scp` (sftp protocol) and `scp -O`;
 * vzsb-tunnel for the tunnel subsystem (`ssh STUDENT@GATEWAY vzsb-tunnel` is the same request).
 */
export function classify(command: string | undefined): Request {
  if (command === undefined) return { kind: 'interactive' };
  if (command.length > MAX_COMMAND) throw new VzsbError('E_USAGE', `the command is longer than ${MAX_COMMAND} bytes`);
  if (command.includes('\0')) throw new VzsbError('E_USAGE', 'the command contains a NUL byte');
  if (command.trim() === TUNNEL_COMMAND) return { kind: 'tunnel' };
  const first = command.trim().split(/\s+/)[0] ?? '';
  if (first === 'internal-sftp' || /(^|\/)sftp-server$/.test(first)) return { kind: 'sftp' };
  if (first === 'scp' || /\/scp$/.test(first)) return { kind: 'scp', command: command.trim() };
  if (command.trim() === '') return { kind: 'interactive' };
  return { kind: 'exec', command };
}
