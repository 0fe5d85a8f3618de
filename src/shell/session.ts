import { VzsbError } from '../common/errors.js';
import { silentLogger, type Logger } from '../common/log.js';
import { releaseSession, requestLease, type BalancerClientOptions, type Lease } from './balancer-client.js';
import { loadGatewayConfig, type GatewayConfig } from './config.js';
import { readInvocation, type Invocation } from './invocation.js';
import { openLogFile } from './log-file.js';
import { createSessionKey } from './session-key.js';
import { SessionRegistry } from './session-registry.js';
import { connectWhenReady } from './sshd-ready.js';
import type { Client } from 'ssh2';
import { openLink, relay, type Relay, type Terminal } from './ssh-link.js';
import { installMark, installStudentKeys, readStudentKeys, relayTunnel, type InstalledKeys } from './tunnel.js';
import { MOVED_LINE, studentCode, studentLine, WAITING_FOR_HOST } from './student-message.js';
import { newSessionId } from './session-id.js';
import { scheduleDeadline } from './session-deadline.js';

/**
 * One student session, from the login shell's start to its exit status: lease, wait for the
 * container's sshd, connect with the session key, relay, release. Exit statuses: the remote
 * one; 128+n when the session was ended by signal n; 255 when the gateway could not give
 * the student a shell (the reason is the last line on stderr and in the log).
 */
export interface SessionDeps {
  env: NodeJS.ProcessEnv;
  io: Terminal;
  configPath: string;
  /** Registers a handler for the signals that end the session; returns the unregister function. */
  onEndSignal: (handler: (signal: NodeJS.Signals) => void) => () => void;
  now?: () => number;
  /**
   * The session agent's config (read once, again when the file changes) and its open log.
   * Without it the session reads `configPath` and opens the log itself, for this one login.
   */
  context?: () => Promise<SessionContext>;
  /** The login's process on the gateway: it names the session marker and the log lines. Default: this process. */
  pid?: number;
}

export interface SessionContext {
  config: GatewayConfig;
  logger: Logger;
  /** Which containers already have which student keys (the agent's, for its whole life). */
  installedKeys?: InstalledKeys;
}

const SIGNAL_STATUS: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 129, SIGINT: 130, SIGQUIT: 131, SIGTERM: 143 };
/** How long the relay may take to close after an end signal before the session ends anyway. */
const END_GRACE_MS = 2000;

export async function runSession(deps: SessionDeps): Promise<number> {
  const now = deps.now ?? (() => performance.now());
  const t0 = now();
  const marks: Record<string, number> = {};
  const progress = (text: string) => {
    if (deps.io.stderr.isTTY) deps.io.stderr.write(`${text}\r\n`);
  };

  let log: Logger = silentLogger;
  let closeLog = () => {};
  let inv: Invocation | undefined;
  let config: GatewayConfig | undefined;
  let lease: Lease | undefined;
  // 'pending' while the request is out: a session ended then may hold a lease it never saw.
  let leaseState: 'none' | 'pending' | 'granted' | 'failed' = 'none';
  let client: Client | undefined;
  let closeTunnel: () => void = () => {};
  /** A tunnel's student keys: installed now, known to be there, none to install, or failed. */
  let tunnelKeys: string | undefined;
  let registry: SessionRegistry | undefined;
  // This login at the hypervisor: its key stays accepted until this session is released.
  let sessionId: string | undefined;
  let endedBy: NodeJS.Signals | undefined;
  let status = 255;
  let stage = 'start';
  let cancelDeadline = () => {};
  let endedByLimit = false;

  // A signal before the relay runs aborts the waiting; during the relay it closes the link.
  let abort: (err: Error) => void = () => {};
  const aborted = new Promise<never>((_, reject) => (abort = reject));
  let markEnded: () => void = () => {};
  const ended = new Promise<void>((r) => (markEnded = r));
  aborted.catch(() => {});
  const step = <T>(p: Promise<T>): Promise<T> => Promise.race([p, aborted]);
  const offSignals = deps.onEndSignal((signal) => {
    if (endedBy) return;
    endedBy = signal;
    markEnded();
    abort(new VzsbError('E_ENDED', `ended by ${signal}`));
    client?.end();
    closeTunnel();
  });

  try {
    const pid = deps.pid ?? process.pid;
    // The agent's log is open already: even a refused identity gets its line there.
    const context = deps.context ? await deps.context() : undefined;
    if (context) log = context.logger.child({ pid });
    inv = readInvocation(deps.env);
    stage = 'config';
    if (context) {
      config = context.config;
      log = log.child({ user: inv.user });
    } else {
      config = await loadGatewayConfig(deps.configPath);
      const file = openLogFile(config.logFile, config.logLevel, { component: 'gateway', pid }, [config.token]);
      log = file.logger.child({ user: inv.user });
      closeLog = file.close;
    }
    registry = new SessionRegistry(config.sessionsDir, pid);
    sessionId = newSessionId(pid);
    // Without its marker this session still works; only an agent restart's cleanup needs it.
    const open = await registry.enter(inv.user, sessionId).catch((err: unknown) => {
      log.warn('session.marker-failed', { error: err, dir: config?.sessionsDir });
      return 0;
    });
    if (open >= config.maxSessionsPerUser) {
      throw new VzsbError('E_TOO_MANY', `you have ${open} sessions open on this gateway`, { details: `${open} live sessions, at most ${config.maxSessionsPerUser}` });
    }
    marks.configMs = now() - t0;

    stage = 'lease';
    progress('Requesting a sandbox...');
    const key = createSessionKey(`${inv.user}@vzsb-gateway`);
    // Loading ssh2 takes a while: do it once the request is out, while the balancer works.
    let sent: () => void = () => {};
    const ssh2Loaded = new Promise<void>((r) => (sent = r)).then(() => import('ssh2'));
    ssh2Loaded.catch(() => {});
    let waiting = false;
    const clientOptions: BalancerClientOptions = {
      ...balancerOptions(config, log),
      onSent: () => sent(),
      onWait: (code, reason) => {
        log.info('lease.waiting', { code, reason });
        if (code === 'E_HOLDER_DOWN' && !waiting) progress(WAITING_FOR_HOST);
        waiting ||= code === 'E_HOLDER_DOWN';
      },
    };
    leaseState = 'pending';
    lease = await step(
      requestLease(clientOptions, inv.user, key.publicKey, config.leaseTimeoutMs, { session: sessionId, maxSessions: config.maxSessionsPerUser }).catch((err: unknown) => {
        leaseState = 'failed';
        throw err;
      }),
    );
    leaseState = 'granted';
    marks.leaseMs = now() - t0;
    sent();
    if (lease.movedFrom) {
      deps.io.stderr.write(MOVED_LINE.replace(/\n$/, deps.io.stderr.isTTY ? '\r\n' : '\n'));
      log.warn('lease.moved', { container: lease.container, hypervisor: lease.hypervisor, movedFrom: lease.movedFrom });
    }

    stage = 'ready';
    progress(`Connecting to ${lease.container}...`);
    const target = lease;
    const sock = await step(connectWhenReady({ host: target.address, port: target.sshPort, timeoutMs: config.sshReadyTimeoutMs, what: target.container }));
    marks.readyMs = now() - t0;

    stage = 'connect';
    await step(ssh2Loaded);
    let running: Relay;
    if (inv.request.kind === 'tunnel') {
      closeTunnel = () => sock.destroy();
      const keys = await readStudentKeys(config.studentKeysDir, inv.user);
      const installed = context?.installedKeys;
      const mark = installMark(target, keys);
      tunnelKeys = keys.length === 0 ? 'none' : installed?.has(mark) ? 'known' : 'installed';
      if (keys.length === 0) log.warn('tunnel.no-keys', { dir: config.studentKeysDir });
      else if (tunnelKeys === 'installed') {
        // Over a link of its own: the connection that saw sshd greet is the student's.
        stage = 'keys';
        try {
          const linked = openLink({ address: target.address, port: target.sshPort, hostKeyFingerprint: target.hostKeyFingerprint, hostKey: target.hostKey, privateKey: key.privateKey, readyTimeoutMs: config.sshConnectTimeoutMs });
          linked.then((c) => (client = c)).catch(() => {});
          client = await step(linked);
          await step(installStudentKeys(client, keys, config.sshConnectTimeoutMs));
          installed?.add(mark);
        } catch (err) {
          // A container that is not the leased one ends it; otherwise keys the student put there may still do.
          if (endedBy || (err instanceof VzsbError && err.code === 'E_HOSTKEY')) throw err;
          tunnelKeys = 'failed';
          log.warn('tunnel.keys-failed', { error: err, details: err instanceof VzsbError ? err.details : undefined, container: target.container });
        } finally {
          client?.end();
          client = undefined;
        }
      }
      marks.connectMs = now() - t0;
      stage = 'relay';
      const piped = relayTunnel(sock, deps.io);
      closeTunnel = piped.close;
      running = piped;
    } else {
      const linked = openLink({ address: target.address, port: target.sshPort, hostKeyFingerprint: target.hostKeyFingerprint, hostKey: target.hostKey, privateKey: key.privateKey, readyTimeoutMs: config.sshConnectTimeoutMs, sock });
      linked.then((c) => (client = c)).catch(() => {});
      client = await step(linked);
      if (endedBy) client.end();
      marks.connectMs = now() - t0;

      stage = 'relay';
      running = await step(relay(client, inv.request, { ...deps.io, term: inv.term }));
    }
    log.info('login', { source: inv.source, request: inv.request.kind, container: target.container, hypervisor: target.hypervisor, balancer: target.balancer, address: target.address, hypervisorMs: target.ms, ...(tunnelKeys ? { keys: tunnelKeys } : {}), ...rounded(marks) });
    void running.firstByte.then(() => log.debug('login.first-byte', { ms: Math.round(now() - t0) }));
    if (target.secondsLeft !== undefined) {
      cancelDeadline = scheduleDeadline({
        secondsLeft: target.secondsLeft,
        write: (text) => deps.io.stderr.write(text),
        end: () => {
          endedByLimit = true;
          log.info('session.limit', { container: target.container });
          client?.end();
          closeTunnel();
        },
      });
    }
    // After an end signal the relay gets a moment to close; a link that does not must not keep the lease.
    status = await Promise.race([running.done, ended.then(() => new Promise<number>((r) => setTimeout(() => r(255), END_GRACE_MS).unref()))]);
    if (endedBy) status = SIGNAL_STATUS[endedBy] ?? 255;
    if (endedByLimit) status = 255;
  } catch (err) {
    if (endedBy) {
      status = SIGNAL_STATUS[endedBy] ?? 255;
    } else {
      status = 255;
      deps.io.stderr.write(studentLine(err));
      log.error('login.failed', { stage, code: studentCode(err), error: err, details: err instanceof VzsbError ? err.details : undefined, source: inv?.source, container: lease?.container, hypervisor: lease?.hypervisor, ms: Math.round(now() - t0) });
    }
  } finally {
    cancelDeadline();
    offSignals();
    client?.end();
    closeTunnel();
    if (inv && config && registry) {
      await registry.leave(inv.user).catch(() => 0);
      let released: string | boolean = false;
      // This session ends at the hypervisor, which ends the lease with the user's last session
      // on any gateway (and otherwise keeps it for them).
      if (leaseState === 'granted' || leaseState === 'pending') {
        released = await releaseSession(balancerOptions(config, log), inv.user, lease?.balancer, config.releaseTimeoutMs, sessionId).then(
          (r) => (r.released ? true : `kept for ${r.sessions ?? 'other'} other session(s)`),
          (err: unknown) => {
            log.warn('lease.release-failed', { error: err, details: err instanceof VzsbError ? err.details : undefined, container: lease?.container });
            return false;
          },
        );
      }
      if (lease) {
        log.info('logout', { source: inv.source, container: lease.container, hypervisor: lease.hypervisor, status, endedBy, released, sessionMs: Math.round(now() - t0) });
      }
    }
    closeLog();
  }
  return status;
}

export function balancerOptions(config: GatewayConfig, log: Logger): BalancerClientOptions {
  return {
    balancers: config.balancers,
    token: config.token,
    connectTimeoutMs: config.connectTimeoutMs,
    requestTimeoutMs: config.requestTimeoutMs,
    onFailover: (balancer, reason) => log.warn('balancer.failover', { balancer, reason }),
  };
}

function rounded(marks: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(marks).map(([k, v]) => [k, Math.round(v)]));
}
