/**
 * Every error code of vzsandbox, once: what it means for the admin, the HTTP status each daemon
 * answers it with, whether the client of that daemon should try again at another server of the
 * same kind, and the sentence a student sees when a login ends with it. `VzsbError.code` is typed
 * by this table, so a code that is not here does not compile; the daemons' status tables, the
 * clients' retry decisions and the gateway's student lines are read from it, and docs/errors.md
 * is generated from it (`npm run docs:errors`).
 *
 * No imports: the gateway's session process loads this on every login.
 */

/**
 * What the client of the daemon that answered should do:
 * - `elsewhere`: another server of the same kind (the next hypervisor for the balancer, the next
 *   balancer for the gateway) may do better; try it.
 * - `wait`: ask again in a moment (the answer says `Retry-After: 1`); any server will do.
 * - `no`: final; asking another server gives the same answer.
 */
export type Retry = 'elsewhere' | 'wait' | 'no';

/** The daemons with an HTTP API. */
export type Daemon = 'hypervisor' | 'balancer';

export interface HttpAnswer {
  status: number;
  retry: Retry;
  /** For a balancer's final answer to the gateway: the code the gateway reports (and shows the student) instead. */
  gatewayCode?: string;
}

export type Area = 'api' | 'hypervisor' | 'balancer' | 'gateway' | 'driver' | 'deploy' | 'lab' | 'cli';

export interface ErrorEntry {
  area: Area;
  /** For the admin reading a log, a report or a command's output: what happened and what to do. */
  admin: string;
  /** The sentence the gateway prints when a student's login ends with this code (`vzsb: ... [CODE]`). */
  student?: string;
  /**
   * A configuration error: a daemon, the session agent or an instructor command that stops on it
   * exits with 1 (any other error that stops them: 3).
   */
  configuration?: true;
  /** How the hypervisor API answers it; absent: the hypervisor never answers it (a 500 E_INTERNAL if thrown there). */
  hypervisor?: HttpAnswer;
  /** How the balancer API answers it; absent: as for `hypervisor`. */
  balancer?: HttpAnswer;
}

const both = (status: number, retry: Retry): Pick<ErrorEntry, 'hypervisor' | 'balancer'> => ({ hypervisor: { status, retry }, balancer: { status, retry } });

const entries = {
  // ------------------------------------------------------------------ every daemon's API
  E_INVALID: {
    area: 'api',
    admin:
      'A value did not have the expected shape: a request body, URL part or query (HTTP 400, the answer lists each bad field), or a configuration file, inventory, playbook argument or command-line value (the message names its dotted path, what was expected and what was found).',
    configuration: true,
    ...both(400, 'no'),
  },
  E_BAD_JSON: { area: 'api', admin: 'The request body is not valid JSON.', ...both(400, 'no') },
  E_DUPLICATE_KEY: {
    area: 'api',
    admin: 'The request body has one key twice in an object (`{"user":"a","user":"root"}`): refused rather than taking either value.',
    ...both(400, 'no'),
  },
  E_ABORTED: { area: 'api', admin: 'The client went away while sending the request body; nothing was done.', ...both(400, 'no') },
  E_BAD_REQUEST: { area: 'api', admin: "Node's HTTP parser refused the request before any route saw it (malformed request line or headers); the connection is closed.", ...both(400, 'no') },
  E_UNAUTHORIZED: {
    area: 'api',
    admin:
      "No bearer token, or one that none of the daemon's tokens matches (`auth.refused` in its log). The balancer then tries another hypervisor (the others may accept its token); the gateway reports E_GATEWAY_AUTH; vzsb's instructor commands stop. Fix the caller's token.",
    hypervisor: { status: 401, retry: 'elsewhere' },
    balancer: { status: 401, retry: 'no', gatewayCode: 'E_GATEWAY_AUTH' },
  },
  E_FORBIDDEN: {
    area: 'api',
    admin: "The token is valid but not of the scope the route needs (lease, admin or metrics). As for E_UNAUTHORIZED: the balancer tries another hypervisor, the gateway reports E_GATEWAY_AUTH.",
    hypervisor: { status: 403, retry: 'elsewhere' },
    balancer: { status: 403, retry: 'no', gatewayCode: 'E_GATEWAY_AUTH' },
  },
  E_NOT_FOUND: {
    area: 'api',
    admin: 'No route for this path (a wrong URL, or not a vzsandbox daemon of this version), or no container of that name on the hypervisor.',
    hypervisor: { status: 404, retry: 'no' },
    balancer: { status: 404, retry: 'elsewhere' },
  },
  E_METHOD: { area: 'api', admin: 'The path exists but not with this method, or the method is not one the daemons know (the answer has `Allow`).', ...both(405, 'no') },
  E_TIMEOUT: {
    area: 'api',
    admin: "The request was not sent completely within the server's request timeout; the connection is closed.",
    hypervisor: { status: 408, retry: 'no' },
    balancer: { status: 408, retry: 'elsewhere' },
  },
  E_BODY_TOO_LARGE: { area: 'api', admin: "The request body is larger than the daemon's `bodyLimitBytes`; the rest is not read and the connection is closed.", ...both(413, 'no') },
  E_URI_TOO_LONG: { area: 'api', admin: 'The request URL is longer than 8192 bytes; the connection is closed.', ...both(414, 'no') },
  E_MEDIA_TYPE: { area: 'api', admin: 'A request body with a Content-Type other than application/json.', ...both(415, 'no') },
  E_HEADERS_TOO_LARGE: { area: 'api', admin: "The request headers are larger than Node's header limit; the connection is closed.", ...both(431, 'no') },
  E_SHUTTING_DOWN: {
    area: 'api',
    admin: 'The daemon is stopping (SIGTERM): requests in flight finish, new ones are refused. Its clients try another one; a hypervisor that answers this counts as down for the balancer.',
    ...both(503, 'elsewhere'),
  },
  E_INTERNAL: {
    area: 'api',
    admin:
      'An error no code covers. A daemon answers 500 with a request id and nothing else (`http.error` in its log has the error and stack under that id); the gateway logs it with `login.failed`. A bug to report, with that log record.',
    student: 'Something went wrong on the gateway. Try again; tell your instructor if it lasts.',
    ...both(500, 'elsewhere'),
  },
  E_HTTP: {
    area: 'api',
    admin:
      'An HTTP error answer without a code this version knows: from something that is not a vzsandbox daemon, from a daemon of another version (the message keeps its code), or an HTTP error of the web framework itself. The status is the answer\'s own.',
  },

  // ------------------------------------------------------------------ hypervisor daemon
  E_POOL_FULL: {
    area: 'hypervisor',
    admin:
      "No clean container, and no room to build one (the pool's `max` is reached). From a hypervisor, the balancer tries the next one; from the balancer it means every hypervisor that is up is full, and the gateway shows E_NO_CAPACITY. Raise `pool.max` or add hypervisors.",
    hypervisor: { status: 503, retry: 'elsewhere' },
    balancer: { status: 503, retry: 'no', gatewayCode: 'E_NO_CAPACITY' },
  },
  E_LEASE_FAILED: {
    area: 'hypervisor',
    admin:
      "Hypervisor: no container could be prepared within the lease's time (failing builds: `container.broken` and `lease.failed` in its log). Balancer: no hypervisor granted a lease within `lease.deadlineMs`, or none could; the message lists each attempt with its code.",
    ...both(503, 'elsewhere'),
  },
  E_NO_LEASE: {
    area: 'hypervisor',
    admin: 'The user holds no lease (on this hypervisor, or on any for the balancer): a release or reset with nothing to do, or a renewal-only request that found none.',
    ...both(404, 'no'),
  },
  E_IN_USE: {
    area: 'hypervisor',
    admin: 'A reset of a container a student is using was refused; pass `force` (`vzsb reset --force`) to reset it anyway.',
    ...both(409, 'no'),
  },
  E_RENEW_FAILED: {
    area: 'hypervisor',
    admin:
      "A second login to a lease held here could not be recorded (the new key or the state could not be written); the container and its sessions are kept (`lease.renew_failed` in the hypervisor log). The hypervisor answers 409, so that the balancer does not give the user a new container elsewhere; the balancer answers 503, so that the gateway asks again until its deadline.",
    hypervisor: { status: 409, retry: 'no' },
    balancer: { status: 503, retry: 'elsewhere' },
  },
  E_STATE_UNWRITABLE: {
    area: 'hypervisor',
    admin:
      'The hypervisor cannot write its state file (disk full, read-only, I/O errors): new leases are refused, renewals and releases go on in memory, and the write is retried until the disk takes it. /healthz says degraded. Free or fix the disk.',
    hypervisor: { status: 503, retry: 'elsewhere' },
  },
  E_DEGRADED: {
    area: 'hypervisor',
    admin:
      "The hypervisor's last health check failed (its bridge is down, the disk is full, a container's sshd does not answer): it refuses new leases, with the reasons in the message, until a check passes; leases held there still renew.",
    hypervisor: { status: 503, retry: 'elsewhere' },
  },
  E_TOO_MANY: {
    area: 'hypervisor',
    admin:
      "The user already has `maxSessionsPerUser` sessions (default 8) open: counted over every gateway by the hypervisor holding the lease (409), or on this gateway alone.",
    student: 'You have too many sessions open. Close one and try again.',
    ...both(409, 'no'),
  },
  E_HELD_HERE: {
    area: 'hypervisor',
    admin: "A user's home hypervisor refused to point the user's lease at another hypervisor because it holds the lease itself; the balancer asks the home again.",
    hypervisor: { status: 409, retry: 'no' },
  },
  E_STATE: {
    area: 'hypervisor',
    admin: "The hypervisor's state file cannot be read or is not valid JSON; at start the daemon takes its predecessor (state.prev.json) and the containers' own lease records instead.",
  },
  E_STATE_CLOSED: { area: 'hypervisor', admin: 'A state write after the state store was closed (the daemon is stopping); the write is refused.' },
  E_LOCKED: {
    area: 'hypervisor',
    admin:
      "The hypervisor's state directory is locked by another process: a running daemon, or `vzsb hypervisor reclaim --once`. reclaim --once asks the running daemon to reclaim instead, which needs an admin token in its config and the daemon answering.",
  },
  E_LISTEN: { area: 'hypervisor', admin: 'A daemon cannot listen on its configured address and port (taken, or not an address of this host); it exits with 3.' },

  // ------------------------------------------------------------------ balancer daemon
  E_NO_HYPERVISOR: {
    area: 'balancer',
    admin: "No hypervisor is up in the balancer's view; the message has each one's last error (health polls, failed calls).",
    balancer: { status: 503, retry: 'elsewhere' },
  },
  E_HYPERVISOR_UNREACHABLE: {
    area: 'balancer',
    admin:
      'A hypervisor could not be connected to (refused, no route, reset): per hypervisor in reports and the log; as an answer, a release that found no reachable hypervisor holding the lease while some could not be asked.',
    balancer: { status: 503, retry: 'elsewhere' },
  },
  E_HYPERVISOR_TIMEOUT: { area: 'balancer', admin: 'A hypervisor did not answer within the call\'s time (`lease.attemptTimeoutMs`, or the instructor fan-out\'s timeout); per hypervisor in reports and the log.' },
  E_HYPERVISOR_BAD_RESPONSE: {
    area: 'balancer',
    admin: "A hypervisor answered with a body that is not JSON or not of the API's shape (a daemon of another version, or something else on its port); per hypervisor in reports and the log.",
  },
  E_UNKNOWN_HYPERVISOR: { area: 'balancer', admin: "No hypervisor of that name in the balancer's configuration (the message lists the known ones).", balancer: { status: 404, retry: 'no' } },
  E_BUSY: {
    area: 'balancer',
    admin:
      'The balancer has `lease.maxConcurrent` lease requests running and `lease.maxQueued` waiting, or a request waited its whole time: 503 with Retry-After: 1. The gateway asks again until its deadline and then shows E_BUSY.',
    student: 'The sandbox service is busy right now. Try again in a moment.',
    balancer: { status: 503, retry: 'wait' },
  },
  E_HOLDER_DOWN: {
    area: 'balancer',
    admin:
      "The hypervisor that holds (or settles) the user's lease does not answer; the balancer waits up to `lease.holderWaitMs` for it before giving a new container on the next one (503 with Retry-After: 1, which the gateway retries). At the gateway: `timeouts.leaseMs` ended first.",
    student: 'The host of your sandbox is restarting and did not come back in time. Try again in a minute; tell your instructor if it lasts.',
    balancer: { status: 503, retry: 'wait' },
  },
  E_PARTIAL: {
    area: 'balancer',
    admin: "A user's reset over every hypervisor reset no container and some hypervisors failed; the report (HTTP 502) lists each one's error.",
    balancer: { status: 502, retry: 'no' },
  },

  // ------------------------------------------------------------------ gateway (the student's login)
  E_NO_CAPACITY: {
    area: 'gateway',
    admin: 'The balancer answered 503 E_POOL_FULL: every hypervisor that is up is full.',
    student: 'All sandboxes are in use right now. Try again in a minute.',
  },
  E_BALANCER_DOWN: {
    area: 'gateway',
    admin: "No balancer granted a lease within `timeouts.leaseMs`: every one was tried, in rounds with backoff; the gateway log has each attempt's reason.",
    student: 'The sandbox service does not answer. Try again in a minute; tell your instructor if it lasts.',
  },
  E_RELEASE_FAILED: {
    area: 'gateway',
    admin: 'A lease could not be released at any balancer in time (the gateway log has why); the hypervisor reclaims it later as an idle lease.',
  },
  E_GATEWAY_AUTH: {
    area: 'gateway',
    admin: "The balancer refused the gateway's token (401/403): the gateway's `token` must be one of the balancer's `tokens.lease`. Fix the config.",
    student: 'The gateway is not allowed to ask for sandboxes. Tell your instructor.',
  },
  E_LEASE_REFUSED: {
    area: 'gateway',
    admin: 'A balancer refused the lease with another 4xx answer (e.g. a user name the API does not accept); the gateway log has the answer.',
    student: 'The sandbox service refused the request. Tell your instructor.',
  },
  E_SSH_TIMEOUT: {
    area: 'gateway',
    admin: "The container's sshd did not greet within `timeouts.sshReadyMs`, or did not take the student's keys in time.",
    student: 'Your sandbox did not start in time. Try again.',
  },
  E_HOSTKEY: {
    area: 'gateway',
    admin: "The container presented a host key other than the one its hypervisor reported (or the lease's key and fingerprint disagree): the connection is refused.",
    student: 'Your sandbox could not prove its identity, so the connection was refused. Tell your instructor.',
  },
  E_SSH: {
    area: 'gateway',
    admin: 'The ssh connection to the container, the session key or the session itself was refused.',
    student: 'The connection to your sandbox failed. Try again.',
  },
  E_CONFIG: {
    area: 'gateway',
    admin: "A configuration file cannot be read or is invalid (the gateway's, a daemon's, the instructor commands' target, a value the inventory must give); the message names the file. Daemons exit with 1.",
    student: 'The gateway is misconfigured. Tell your instructor.',
    configuration: true,
  },
  E_IDENTITY: {
    area: 'gateway',
    admin: 'The login shell was not started through sudo by the vzsb-shell wrapper, or for a user name that cannot have a sandbox (root, not a valid Unix name).',
    student: 'This account cannot have a sandbox.',
  },
  E_USAGE: {
    area: 'gateway',
    admin: "An unsupported request: at the gateway a command over 64 KiB or with a NUL byte (the student's line adds the reason); for vzsb itself, arguments it does not take.",
    student: 'That request is not supported here.',
  },
  E_ENDED: { area: 'gateway', admin: 'The login was ended by a signal (SIGTERM, SIGHUP) while it was being set up.' },
  E_RUNNING: { area: 'gateway', admin: 'Another session agent already listens on the agent socket.' },
  E_SUDOERS: { area: 'gateway', admin: "visudo rejects the rendered sudoers file for the gateway's wrapper; nothing was installed." },

  // ------------------------------------------------------------------ container drivers
  E_DRIVER_NOT_FOUND: { area: 'driver', admin: 'No such container (or no recorded host key for it).' },
  E_DRIVER_EXISTS: { area: 'driver', admin: 'Create of a container id that already exists.' },
  E_DRIVER_LOCKED: { area: 'driver', admin: "The container runtime's lock is held (vzctl exit 9)." },
  E_DRIVER_NO_BASE: { area: 'driver', admin: 'The base container or OS template is missing (vzctl exit 91): run prepare (deployment does).' },
  E_DRIVER_RUNTIME: { area: 'driver', admin: 'Anything else the container runtime reported; the message names the container and the step, the details have the command and its stderr.' },

  // ------------------------------------------------------------------ deploying (vzsb deploy and its parts)
  E_INVENTORY: { area: 'deploy', admin: 'The inventory has no such host or group, or the host is not in --limit.' },
  E_PLAYBOOK: { area: 'deploy', admin: 'A playbook or role cannot be read, or uses something vzsb does not do; the message names the task.' },
  E_TEMPLATE: { area: 'deploy', admin: 'A template cannot be read or rendered (an undefined variable, a syntax error); the message has the file and line.' },
  E_CONDITION: { area: 'deploy', admin: 'A `when`, `changed_when` or `failed_when` expression cannot be evaluated (its syntax, an undefined variable).' },
  E_SECRETS: { area: 'deploy', admin: 'The secrets file is not YAML, or not a mapping of names to strings of at least 16 characters.' },
  E_FACTS: { area: 'deploy', admin: "A host's facts could not be gathered (become failed, or the facts command failed); the message has the end of its stderr." },
  E_RUN: { area: 'deploy', admin: 'A run named a host that is not in the inventory.' },
  E_UNREACHABLE: { area: 'deploy', admin: 'A host could not be reached over SSH (connection refused or timed out, authentication failed).' },
  E_COMMAND: { area: 'deploy', admin: 'A command failed (a non-zero exit or a timeout); the message has the command line and the end of its stderr.' },
  E_SPAWN: { area: 'deploy', admin: 'A program could not be started at all (not installed, not executable).' },
  E_ROOTFS: { area: 'deploy', admin: 'debootstrap of the containers\' root filesystem failed; the details have its output.' },
  E_PREFLIGHT: { area: 'deploy', admin: 'A pre-flight check failed before anything was changed; `vzsb doctor` shows every check. Exit 1.' },

  // ------------------------------------------------------------------ labs (vzsb lab)
  E_LAB_BASE: { area: 'lab', admin: "Preparing the lab's base container failed; the message has the end of its output." },
  E_LAB_CLONE: { area: 'lab', admin: 'lxc-copy did not give a lab host an overlay root filesystem.' },
  E_LAB_EXISTS: { area: 'lab', admin: 'A lab of that name already exists; destroy it first.' },
  E_LAB_FIREWALL: { area: 'lab', admin: "The lab's nftables table cannot be added or removed." },
  E_LAB_HOST: { area: 'lab', admin: 'The lab has no host of that name (the message lists its hosts).' },
  E_LAB_LIST: { area: 'lab', admin: 'The LXC containers of this machine cannot be listed.' },
  E_LAB_MISSING: { area: 'lab', admin: 'No lab of that name on this machine (`vzsb lab list` shows them).' },
  E_LAB_NET: { area: 'lab', admin: "This machine's addresses cannot be listed (`ip` failed)." },
  E_LAB_NOT_READY: { area: 'lab', admin: 'Lab hosts did not become ready in time; the message says what each one lacks.' },
  E_LAB_NO_GATEWAY: { area: 'lab', admin: 'The lab has no gateway host (make it with --sandbox).' },
  E_LAB_SIZE: { area: 'lab', admin: 'A lab holds at most 241 hosts.' },
  E_LAB_START: { area: 'lab', admin: "A lab host did not start; the message has lxc-start's log." },
  E_LAB_SUBNET: { area: 'lab', admin: 'No free /24 is left for a new lab: destroy unused labs.' },

  // ------------------------------------------------------------------ instructor commands
  E_BALANCER_UNREACHABLE: { area: 'cli', admin: "No balancer of the instructor commands' target answered (each one's reason is listed)." },
  E_API: { area: 'cli', admin: 'A daemon answered an instructor command (or reclaim --once) with an error this version has no code for; the message has the status and the daemon\'s words.' },
} satisfies Record<string, ErrorEntry>;

export type ErrorCode = keyof typeof entries;

export const ERROR_CATALOG: Readonly<Record<ErrorCode, ErrorEntry>> = entries;

export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(ERROR_CATALOG, value);
}

/** How `daemon` answers `code` over HTTP; undefined when it never does (or the code is unknown, e.g. from another version). */
export function httpAnswer(daemon: Daemon, code: string | undefined): HttpAnswer | undefined {
  return isErrorCode(code) ? ERROR_CATALOG[code][daemon] : undefined;
}

/** Code to HTTP status for every code `daemon` answers (its error middleware's table). */
export function httpStatusTable(daemon: Daemon): Readonly<Record<string, number>> {
  const table: Record<string, number> = {};
  for (const [code, entry] of Object.entries(ERROR_CATALOG)) {
    const answer = entry[daemon];
    if (answer) table[code] = answer.status;
  }
  return table;
}

/** The status of a code every daemon answers alike (the HTTP parser's refusals, before any daemon's app). */
export function commonHttpStatus(code: ErrorCode): number {
  const { hypervisor, balancer } = ERROR_CATALOG[code];
  if (!hypervisor || !balancer || hypervisor.status !== balancer.status) throw new Error(`${code}: not answered alike by every daemon`);
  return hypervisor.status;
}

/** Whether `code` is a configuration error (exit 1 where a daemon or command stops on it). */
export function isConfigurationError(code: unknown): boolean {
  return isErrorCode(code) && ERROR_CATALOG[code].configuration === true;
}

/** The student's sentence for `code`, when a login can end with it. */
export function studentSentence(code: string): string | undefined {
  return isErrorCode(code) ? ERROR_CATALOG[code].student : undefined;
}
