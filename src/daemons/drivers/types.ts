import { VzsbError } from '../../common/errors.js';

/**
 * The container driver contract. The pool manager is the only caller; every method may be
 * called concurrently for different containers, never for the same one (the pool serializes
 * per container). Drivers own addressing and host keys; the pool owns states and leases.
 *
 * Every driver passes `runDriverConformance` (./conformance.ts).
 */
export interface ContainerInfo {
  /** The pool's name for it, e.g. "vzsb-0007". Only containers with the driver's prefix are listed. */
  id: string;
  running: boolean;
  /** IPv4 address students' ssh reaches, once created. */
  address: string | undefined;
}

export interface HostKey {
  /** OpenSSH public key line, "ssh-ed25519 AAAA..." */
  publicKey: string;
  /** "SHA256:..." as ssh-keygen -lf prints it */
  fingerprint: string;
}

export interface ExecResult {
  exitCode: number;
  stdout: string;
  stderr: string;
}

export interface ContainerDriver {
  readonly name: string;
  /** Build or check the base (LXC base container / OpenVZ OS template). Idempotent; slow only the first time. */
  prepare(): Promise<void>;
  /** Containers this driver owns (by prefix), from the runtime itself: the truth on restart. */
  list(): Promise<ContainerInfo[]>;
  /**
   * Make a stopped container from the base by copy-on-write, with fresh host keys, its own
   * address and resource limits. On error a half-made container may exist: the caller destroys it.
   */
  create(id: string): Promise<ContainerInfo>;
  /** Start and resolve once its sshd accepts TCP connections. Starting a running container is not an error. */
  start(id: string): Promise<void>;
  /** Stop; stopping a stopped container is not an error. */
  stop(id: string): Promise<void>;
  /** Remove everything of it; destroying a missing container is not an error. */
  destroy(id: string): Promise<void>;
  /**
   * Run a command inside a running container (root, clean environment, HOME=/root). A non-zero
   * exit is a result, not an error; a stopped container is E_DRIVER_RUNTIME.
   */
  exec(id: string, argv: readonly string[], input?: string): Promise<ExecResult>;
  /**
   * Live ssh session processes inside the container, read from the host's view of the
   * container's processes (never from tools inside it: the student may have deleted them).
   */
  sessionCount(id: string): Promise<number>;
  /**
   * Replace root's authorized keys with exactly these keys (the one-time keys of the lease's
   * live sessions: one login's key stays accepted while other logins come and go; an empty
   * list accepts none). Written from inside the container (or into a clone that has never
   * run), never through a path a student controls from the host side. E_INVALID for anything
   * but public key lines, one per key.
   */
  authorizeKey(id: string, publicKeys: string | readonly string[]): Promise<void>;
  /** The container's ssh host key, unique per clone. */
  hostKey(id: string): Promise<HostKey>;
  /**
   * Optional: keep a small record (the pool's lease record, JSON text) with the container on
   * the host, outside anything the container reaches, replaced atomically; it goes when the
   * container is destroyed. A daemon whose state file is damaged rebuilds its leases from
   * these. May run while another call for the same container runs (it touches only the record).
   */
  writeLeaseRecord?(id: string, text: string): Promise<void>;
  /** The record `writeLeaseRecord` kept, or undefined when there is none. */
  readLeaseRecord?(id: string): Promise<string | undefined>;
  /**
   * Optional: what new containers need from the host, checked now (the container network is
   * up, free disk where clones go). Each failed check is one short reason; none is healthy.
   */
  health?(): Promise<DriverHealth>;
}

export interface DriverHealth {
  /** Reasons this host should get no new containers now, e.g. "bridge vzsbbr0 is down". */
  problems: string[];
  /** Free bytes where new containers are made, when known. */
  freeBytes?: number;
  /** Containers' addresses are reachable from this host, so their sshd can be probed. */
  reachable?: boolean;
}

/** The keys of an authorizeKey call, one line each; E_INVALID for a key with a line break. */
export function keyLines(publicKeys: string | readonly string[]): string[] {
  const keys = typeof publicKeys === 'string' ? [publicKeys] : [...publicKeys];
  return keys.map((k) => {
    const line = k.trim();
    if (line.includes('\n')) throw new VzsbError('E_INVALID', 'authorizeKey: expected one public key line per key, got several lines');
    return line;
  });
}

export type DriverErrorCode =
  | 'E_DRIVER_NOT_FOUND' // no such container
  | 'E_DRIVER_EXISTS' // create of an existing id
  | 'E_DRIVER_LOCKED' // runtime lock held (vzctl 9)
  | 'E_DRIVER_NO_BASE' // base container / template missing (vzctl 91)
  | 'E_DRIVER_RUNTIME'; // anything else the runtime reported
