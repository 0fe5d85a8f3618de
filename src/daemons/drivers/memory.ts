import { VzsbError } from '../../common/errors.js';
import { generateEd25519, parsePublicKey } from '../common/ssh-key.js';
import { keyLines, type ContainerDriver, type ContainerInfo, type DriverErrorCode, type DriverHealth, type ExecResult, type HostKey } from './types.js';

/**
 * An in-memory container driver for unit tests of the pool. Nothing runs: there are no
 * processes, no network and the addresses it reports answer nothing. It honours the
 * contract of ./types.ts (errors, idempotent stop/destroy, a fresh host key per clone) and
 * checks the caller's side of it: two overlapping calls for the same container fail with
 * E_DRIVER_RUNTIME and are counted in `violations`.
 *
 * Tests steer it: `setSessions` plays a student logging in, `failNext` makes an operation fail,
 * `crashAt` kills this driver instance in the middle of an operation (the daemon process died
 * there) and `reopen` gives the next daemon a driver on the same containers.
 */
/** How many driver calls `calls` keeps at least. */
const CALLS_KEPT = 10_000;

export type MemoryOp = 'create' | 'start' | 'stop' | 'destroy' | 'exec' | 'sessionCount' | 'authorizeKey' | 'hostKey';

export interface MemoryDriverOptions {
  /** Container id prefix; ids are "<prefix><number>". Default "vzsb-". */
  prefix?: string;
  /** Milliseconds each operation takes (real time), so overlapping calls can be seen. Default 0. */
  latencyMs?: number;
}

interface MemoryContainer {
  id: string;
  running: boolean;
  address: string;
  hostKey: HostKey;
  authorizedKeys: string[];
  sessions: number;
  files: Map<string, string>;
  /** The pool's lease record, kept with the container (host side). */
  leaseRecord?: string;
}

interface Trap {
  op: MemoryOp;
  id: string | undefined;
  action: 'fail' | 'crash';
  message: string;
  hit?: (id: string) => void;
}

/** What outlives a daemon process: the containers themselves. */
interface MemoryRuntime {
  containers: Map<string, MemoryContainer>;
  busy: Set<string>;
  traps: Trap[];
  violations: string[];
  calls: string[];
  /** Lease record writes fail with this errno code (e.g. "ENOSPC") while set. */
  recordFault?: string;
  /** What health() reports (test control). */
  healthProblems: string[];
}

export class MemoryDriver implements ContainerDriver {
  readonly name = 'memory';
  readonly prefix: string;
  private readonly latencyMs: number;
  private readonly rt: MemoryRuntime;
  private dead = false;
  private prepared = false;

  constructor(options: MemoryDriverOptions = {}, runtime?: MemoryRuntime) {
    this.prefix = options.prefix ?? 'vzsb-';
    this.latencyMs = options.latencyMs ?? 0;
    this.rt = runtime ?? { containers: new Map(), busy: new Set(), traps: [], violations: [], calls: [], healthProblems: [] };
  }

  /** Overlapping calls for one container (the pool must never make them). */
  get violations(): string[] {
    return this.rt.violations;
  }

  /** The calls made, in order, as "op id" (the last 10,000 or more). */
  get calls(): string[] {
    return this.rt.calls;
  }

  private get containers(): Map<string, MemoryContainer> {
    return this.rt.containers;
  }

  /** A driver on the same containers, as a restarted daemon would see them. */
  reopen(): MemoryDriver {
    return new MemoryDriver({ prefix: this.prefix, latencyMs: this.latencyMs }, this.rt);
  }

  async prepare(): Promise<void> {
    this.prepared = true;
  }

  async list(): Promise<ContainerInfo[]> {
    await this.delay();
    if (this.dead) return new Promise(() => {});
    return [...this.containers.values()]
      .filter((c) => c.id.startsWith(this.prefix))
      .map((c) => ({ id: c.id, running: c.running, address: c.address }));
  }

  create(id: string): Promise<ContainerInfo> {
    return this.op('create', id, () => {
      if (this.containers.has(id)) throw driverError('E_DRIVER_EXISTS', `container ${id} already exists`);
      const n = Number(/(\d+)$/.exec(id)?.[1] ?? NaN);
      if (!id.startsWith(this.prefix) || !Number.isInteger(n)) {
        throw driverError('E_DRIVER_RUNTIME', `container id ${id} must be "${this.prefix}<number>"`);
      }
      const key = generateEd25519(`root@${id}`);
      const c: MemoryContainer = {
        id,
        running: false,
        // Never routed anywhere: 198.18.0.0/15 is reserved for benchmarks.
        address: `198.18.${(n >> 8) & 255}.${n & 255}`,
        hostKey: { publicKey: key.publicKey, fingerprint: key.fingerprint },
        authorizedKeys: [],
        sessions: 0,
        files: new Map([['/etc/hostname', `${id}\n`]]),
      };
      this.containers.set(id, c);
      return { id, running: false, address: c.address };
    });
  }

  start(id: string): Promise<void> {
    return this.op('start', id, () => {
      this.get(id).running = true;
    });
  }

  stop(id: string): Promise<void> {
    return this.op('stop', id, () => {
      const c = this.get(id);
      c.running = false;
      c.sessions = 0;
    });
  }

  destroy(id: string): Promise<void> {
    return this.op('destroy', id, () => {
      this.containers.delete(id);
    });
  }

  exec(id: string, argv: readonly string[], input?: string): Promise<ExecResult> {
    return this.op('exec', id, () => runBuiltin(this.running(id), argv, input));
  }

  sessionCount(id: string): Promise<number> {
    return this.op('sessionCount', id, () => {
      const c = this.get(id);
      return c.running ? c.sessions : 0;
    });
  }

  authorizeKey(id: string, publicKeys: string | readonly string[]): Promise<void> {
    return this.op('authorizeKey', id, () => {
      const c = this.get(id);
      const lines = keyLines(publicKeys);
      for (const line of lines) {
        const parsed = parsePublicKey(line);
        if ('error' in parsed) throw new VzsbError('E_INVALID', `authorizeKey: expected ${parsed.error}`);
      }
      c.authorizedKeys = lines;
      c.files.set('/root/.ssh/authorized_keys', lines.map((l) => l + '\n').join(''));
    });
  }

  hostKey(id: string): Promise<HostKey> {
    return this.op('hostKey', id, () => ({ ...this.get(id).hostKey }));
  }

  async writeLeaseRecord(id: string, text: string): Promise<void> {
    await this.delay();
    if (this.rt.recordFault) throw Object.assign(new Error(`${this.rt.recordFault}: injected lease record failure`), { code: this.rt.recordFault });
    this.get(id).leaseRecord = text;
  }

  async readLeaseRecord(id: string): Promise<string | undefined> {
    return this.containers.get(id)?.leaseRecord;
  }

  async health(): Promise<DriverHealth> {
    return { problems: [...this.rt.healthProblems] };
  }

  // ---- test controls ----

  /** Lease record writes fail with this errno code from now on (undefined: they work again). */
  failLeaseRecords(code: string | undefined): void {
    this.rt.recordFault = code;
  }

  /** What health() reports from now on. */
  setHealthProblems(problems: string[]): void {
    this.rt.healthProblems = [...problems];
  }

  /** The lease record kept with a container, parsed. */
  leaseRecordOf(id: string): unknown {
    const text = this.containers.get(id)?.leaseRecord;
    return text === undefined ? undefined : JSON.parse(text);
  }

  /** Damage a container's lease record (as a torn disk would). */
  setLeaseRecord(id: string, text: string | undefined): void {
    this.get(id).leaseRecord = text;
  }

  /** Play `n` live ssh sessions inside a running container. */
  setSessions(id: string, n: number): void {
    this.running(id).sessions = n;
  }

  /** The last key authorized (the newest session's), or undefined. */
  authorizedKeyOf(id: string): string | undefined {
    return this.containers.get(id)?.authorizedKeys.at(-1);
  }

  /** Every key the container accepts now. */
  authorizedKeysOf(id: string): string[] {
    return [...(this.containers.get(id)?.authorizedKeys ?? [])];
  }

  /** Write a file inside a container, as a student would. */
  writeFile(id: string, path: string, content: string): void {
    this.get(id).files.set(path, content);
  }

  has(id: string): boolean {
    return this.containers.has(id);
  }

  isPrepared(): boolean {
    return this.prepared;
  }

  /** The next call of `op` (for `id`, or any container) throws E_DRIVER_RUNTIME. */
  failNext(op: MemoryOp, id?: string, message = `injected ${op} failure`): void {
    this.rt.traps.push({ op, id, action: 'fail', message });
  }

  /**
   * At the next call of `op`, this driver instance dies as its process would: that call and
   * every later one never settle. Side effects up to that point stay (for create: a half-made
   * container). Resolves with the container id once it happened.
   */
  crashAt(op: MemoryOp, id?: string): Promise<string> {
    return new Promise((resolve) => {
      this.rt.traps.push({ op, id, action: 'crash', message: '', hit: resolve });
    });
  }

  private async op<T>(op: MemoryOp, id: string, body: () => T): Promise<T> {
    const never = new Promise<T>(() => {});
    if (this.dead) return never;
    this.calls.push(`${op} ${id}`);
    // A long-running memory daemon (a demo, the soak bench) keeps only the recent calls.
    if (this.calls.length > 2 * CALLS_KEPT) this.calls.splice(0, this.calls.length - CALLS_KEPT);
    if (this.rt.busy.has(id)) {
      this.violations.push(`${op} ${id}`);
      throw driverError('E_DRIVER_RUNTIME', `overlapping operations on ${id} (${op})`);
    }
    this.rt.busy.add(id);
    try {
      await this.delay();
      if (this.dead) return never;
      const i = this.rt.traps.findIndex((t) => t.op === op && (t.id === undefined || t.id === id));
      if (i >= 0) {
        const [trap] = this.rt.traps.splice(i, 1) as [Trap];
        if (trap.action === 'fail') throw driverError('E_DRIVER_RUNTIME', trap.message);
        this.dead = true;
        if (op === 'create' && !this.containers.has(id)) {
          const key = generateEd25519();
          this.containers.set(id, {
            id, running: false, address: '', hostKey: { publicKey: key.publicKey, fingerprint: key.fingerprint },
            authorizedKeys: [], sessions: 0, files: new Map(),
          });
        }
        trap.hit?.(id);
        // A dead process holds nothing: `finally` frees the container for whoever comes next.
        return never;
      }
      return body();
    } finally {
      this.rt.busy.delete(id);
    }
  }

  private get(id: string): MemoryContainer {
    const c = this.containers.get(id);
    if (!c) throw driverError('E_DRIVER_NOT_FOUND', `no container ${id}`);
    return c;
  }

  private running(id: string): MemoryContainer {
    const c = this.get(id);
    if (!c.running) throw driverError('E_DRIVER_RUNTIME', `container ${id} is not running`);
    return c;
  }

  private delay(): Promise<void> {
    return new Promise((resolve) => (this.latencyMs > 0 ? setTimeout(resolve, this.latencyMs) : setImmediate(resolve)));
  }
}

function driverError(code: DriverErrorCode, message: string): VzsbError {
  return new VzsbError(code, message);
}

/** A handful of commands over the container's in-memory files; anything else exits 127. */
function runBuiltin(c: MemoryContainer, argv: readonly string[], input = ''): ExecResult {
  const [cmd, ...args] = argv;
  const ok = (stdout = ''): ExecResult => ({ exitCode: 0, stdout, stderr: '' });
  const fail = (exitCode: number, stderr: string): ExecResult => ({ exitCode, stdout: '', stderr });
  switch (cmd) {
    case 'true':
      return ok();
    case 'false':
      return fail(1, '');
    case 'echo':
      return ok(args.join(' ') + '\n');
    case 'hostname':
      return ok(`${c.id}\n`);
    case 'cat': {
      if (args.length === 0) return ok(input);
      let out = '';
      for (const p of args) {
        const content = c.files.get(p);
        if (content === undefined) return fail(1, `cat: ${p}: No such file or directory\n`);
        out += content;
      }
      return ok(out);
    }
    case 'tee':
      for (const p of args) c.files.set(p, input);
      return ok(input);
    case 'rm':
      for (const p of args.filter((a) => !a.startsWith('-'))) c.files.delete(p);
      return ok();
    case 'test':
      if (args[0] === '-e' && args[1] !== undefined) return c.files.has(args[1]) ? ok() : fail(1, '');
      return fail(2, 'test: only -e is supported by the memory driver\n');
    default:
      return fail(127, `${cmd ?? ''}: command not found (memory driver)\n`);
  }
}
