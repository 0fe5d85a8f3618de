import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import { Client, type ConnectConfig } from 'ssh2';
import type { CommandResult } from '../../common/exec.js';
import { appendKnownHost, checkKnownHost, fingerprint, keyTypeOf, readKnownHosts } from './known-hosts.js';
import { expandHome, loadSshConfig } from './ssh-config.js';
import { UnreachableError, newStats, shellCommand, type Connection } from './types.js';

export interface SshTarget {
  /** Inventory name, for messages. */
  name: string;
  host: string;
  port: number | undefined;
  user: string | undefined;
  privateKeyFile: string | undefined;
}

export interface SshOptions {
  /** Extra known_hosts files checked before ~/.ssh/known_hosts. */
  knownHostsFiles?: string[];
  /** Accept and record keys of hosts not yet known (never a changed key). Default false. */
  acceptNewHostKeys?: boolean;
  /** Where new keys are recorded. Default ~/.ssh/known_hosts. */
  knownHostsWriteFile?: string;
  /** Turn off host key checking entirely (tests of throwaway hosts only). */
  insecureIgnoreHostKeys?: boolean;
  connectTimeoutMs?: number;
  sshConfigFile?: string;
}

const DEFAULT_KEYS = ['id_ed25519', 'id_ecdsa', 'id_rsa'];

/** Open one SSH connection (through ProxyJump hosts if configured) and keep it for the whole run. */
export async function connectSsh(target: SshTarget, options: SshOptions = {}): Promise<Connection> {
  const stats = newStats();
  const started = performance.now();
  const cfg = loadSshConfig(target.host, options.sshConfigFile);
  const host = cfg.hostName ?? target.host;
  const port = target.port ?? cfg.port ?? 22;
  const user = target.user ?? cfg.user ?? process.env.USER ?? 'root';
  const keyFiles = target.privateKeyFile
    ? [expandHome(target.privateKeyFile)]
    : cfg.identityFiles.length
      ? cfg.identityFiles
      : DEFAULT_KEYS.map((k) => `${homedir()}/.ssh/${k}`).filter((f) => existsSync(f));
  const knownFiles = [...(options.knownHostsFiles ?? []), cfg.userKnownHostsFile ?? `${homedir()}/.ssh/known_hosts`];
  const strict = cfg.strictHostKeyChecking;
  const acceptNew = options.acceptNewHostKeys ?? (strict === 'accept-new' || strict === 'no' || strict === 'off');
  const clients: Client[] = [];
  let sock: Duplex | undefined;

  // ProxyJump: each hop is its own ssh2 client whose forwarded channel becomes the next socket.
  const jumps = cfg.proxyJump && cfg.proxyJump !== 'none' ? cfg.proxyJump.split(',') : [];
  try {
    for (const jump of jumps) {
      const m = /^(?:([^@]+)@)?([^:]+)(?::(\d+))?$/.exec(jump.trim());
      if (!m) throw new UnreachableError(target.name, `bad ProxyJump "${jump}"`);
      const jcfg = loadSshConfig(m[2]!, options.sshConfigFile);
      const jhost = jcfg.hostName ?? m[2]!;
      const jport = m[3] ? Number(m[3]) : (jcfg.port ?? 22);
      const jclient = await open(jhost, jport, m[1] ?? jcfg.user ?? user, jcfg.identityFiles.length ? jcfg.identityFiles : keyFiles, sock, `${target.name} (via ${jump})`);
      clients.push(jclient);
      sock = await forward(jclient, host, port, target.name);
      stats.channels++;
    }
    const client = await open(host, port, user, keyFiles, sock, target.name);
    clients.push(client);
    stats.connectMs = performance.now() - started;
    return makeConnection(target.name, client, user, stats, () => clients.reverse().forEach((c) => c.end()));
  } catch (err) {
    for (const c of clients) c.end();
    throw err;
  }

  function open(h: string, p: number, u: string, keys: string[], viaSock: Duplex | undefined, name: string): Promise<Client> {
    return new Promise((resolve, reject) => {
      const client = new Client();
      let hostKeyProblem: string | undefined;
      const privateKey = keys.map((k) => readKey(k, name)).find((k) => k !== undefined);
      const config: ConnectConfig = {
        host: h,
        port: p,
        username: u,
        readyTimeout: options.connectTimeoutMs ?? 15_000,
        keepaliveInterval: 15_000,
        ...(viaSock ? { sock: viaSock } : {}),
        ...(privateKey ? { privateKey } : {}),
        ...(process.env.SSH_AUTH_SOCK ? { agent: process.env.SSH_AUTH_SOCK } : {}),
        hostVerifier: (key: Buffer) => {
          if (options.insecureIgnoreHostKeys) return true;
          const verdict = checkKnownHost(readKnownHosts(knownFiles), h, p, key);
          if (verdict === 'match') return true;
          if (verdict === 'unknown' && acceptNew) {
            appendKnownHost(options.knownHostsWriteFile ?? knownFiles[knownFiles.length - 1]!, h, p, keyTypeOf(key), key);
            return true;
          }
          hostKeyProblem =
            verdict === 'unknown'
              ? `host key ${fingerprint(key)} is not in known_hosts (${knownFiles.join(', ')}); add it, or pass --accept-new-host-keys`
              : verdict === 'revoked'
                ? `host key ${fingerprint(key)} is marked @revoked`
                : `HOST KEY MISMATCH: ${fingerprint(key)} differs from the key in known_hosts (possible man-in-the-middle); refusing to connect`;
          return false;
        },
      };
      if (!privateKey && !config.agent) {
        reject(new UnreachableError(name, `no private key (tried ${keys.join(', ') || 'none'}) and no ssh-agent`));
        return;
      }
      // Keys only: without ssh2's first "none" attempt, which costs a round trip.
      config.authHandler = [...(privateKey ? (['publickey'] as const) : []), ...(config.agent ? (['agent'] as const) : [])];
      client.once('ready', () => resolve(client));
      client.once('error', (err: Error & { level?: string }) => {
        client.end();
        const reason = hostKeyProblem ?? (err.level === 'client-authentication' ? `authentication failed for ${u}@${h}:${p}` : `${err.message} (${h}:${p})`);
        reject(new UnreachableError(name, reason, err));
      });
      client.connect(config);
      // Without TCP_NODELAY a small packet that follows an unanswered one waits for the host's
      // delayed ACK (40 ms): several times per connection and round trip.
      client.setNoDelay(true);
    });
  }
}

function readKey(file: string, name: string): Buffer | undefined {
  try {
    return readFileSync(file);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') throw new UnreachableError(name, `private key file ${file} does not exist`);
    throw new UnreachableError(name, `cannot read private key ${file}: ${(err as Error).message}`);
  }
}

function forward(client: Client, host: string, port: number, name: string): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    client.forwardOut('127.0.0.1', 0, host, port, (err, stream) => {
      if (err) reject(new UnreachableError(name, `jump host could not reach ${host}:${port}: ${err.message}`, err));
      else resolve(stream);
    });
  });
}

function makeConnection(name: string, client: Client, user: string, stats: ReturnType<typeof newStats>, close: () => void): Connection {
  let closed = false;
  let lost: Error | undefined;
  client.on('error', (err) => { lost = err; });
  client.on('close', () => { closed = true; });
  return {
    host: name,
    stats,
    run(script, options) {
      const command = shellCommand(user, options);
      return new Promise<CommandResult>((resolve, reject) => {
        if (closed) {
          reject(new UnreachableError(name, `connection lost${lost ? `: ${lost.message}` : ''}`));
          return;
        }
        const started = performance.now();
        stats.roundTrips++;
        stats.channels++;
        client.exec(command, (err, stream) => {
          if (err) {
            reject(new UnreachableError(name, `cannot open a session: ${err.message}`, err));
            return;
          }
          const out: Buffer[] = [];
          const errs: Buffer[] = [];
          let code: number | null = null;
          let signal: string | null = null;
          stream.on('data', (d: Buffer) => out.push(d));
          stream.stderr.on('data', (d: Buffer) => errs.push(d));
          stream.on('exit', (c: number | null, s?: string) => {
            code = c;
            signal = s ?? null;
          });
          stream.on('close', () => {
            const stdout = Buffer.concat(out);
            const stderr = Buffer.concat(errs);
            stats.bytesReceived += stdout.length + stderr.length;
            const exitCode = code ?? 255;
            resolve({
              command,
              exitCode,
              signal,
              stdout: stdout.toString('utf8'),
              stderr: stderr.toString('utf8'),
              durationMs: performance.now() - started,
              timedOut: false,
              failed: exitCode !== 0,
            });
          });
          const payload = Buffer.from(script);
          stats.bytesSent += payload.length;
          stream.end(payload);
        });
      });
    },
    async close() {
      if (!closed) close();
    },
  };
}
