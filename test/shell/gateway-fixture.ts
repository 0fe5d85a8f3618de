import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run, runChecked } from '../../src/common/exec.js';
import { generateEd25519 } from '../../src/daemons/common/ssh-key.js';
import { waitForSsh } from '../../src/daemons/drivers/ssh-ready.js';
import { toOpensshPrivateKey } from '../../src/shell/session-key.js';
import { removeGateway, setupGateway, type GatewaySetupOptions } from '../../src/shell/setup.js';
import { createTestBridge, lxcConfigOn, type TestBridge } from '../helpers/bridge.js';
import { runCli, type CliProcess } from '../hypervisor/daemon-process.js';

/**
 * A whole gateway on this machine, for the login tests and bench/login.ts: a hypervisor
 * daemon process with the LXC driver on a private bridge (bridge vzsbt<index>, containers
 * "vzg<index>-N"), the gateway set up by setupGateway (service user, students' group, sudoers
 * rule, wrapper, config) with test names, students as real Unix users whose login shell is
 * the wrapper, and a real sshd on a loopback port that runs it. Everything is removed by
 * `close()`. The session process runs from the TypeScript sources through tsx, or from
 * dist/ when `useDist` (bench: the installed shape).
 */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const TSX_LOADER = join(ROOT, 'node_modules', 'tsx', 'dist', 'loader.mjs');

export interface GatewayFixture {
  index: number;
  work: string;
  bridge: TestBridge;
  daemon: CliProcess;
  hypervisorUrl: string;
  leaseToken: string;
  adminToken: string;
  setup: GatewaySetupOptions;
  sshPort: number;
  /** Private key file (OpenSSH format) that logs any student into the gateway's sshd. */
  clientKeyFile: string;
  knownHostsFile: string;
  students: string[];
  /** A user outside the students' group. */
  outsider: string;
  /** ssh arguments up to and including user@host. */
  sshArgs(user: string, extra?: string[]): string[];
  /** Options for ssh, sftp and scp (key, known hosts, batch mode), without the port. */
  sshOptions: string[];
  /** The session agent's process (the service user's), while it runs. */
  agent: ChildProcess | undefined;
  /** What the session agent wrote to stderr (its log), all of its runs. */
  agentLog(): string;
  /** Start the session agent (as the service user) and wait until it listens. */
  startAgent(): Promise<void>;
  /** SIGTERM the agent; resolves with its exit code once it has drained and exited. */
  stopAgent(): Promise<number | null>;
  /** Rewrite the gateway config (balancers, timeouts) for one test. */
  writeConfig(change: Partial<GatewaySetupOptions['gateway']>): Promise<void>;
  restoreConfig(): Promise<void>;
  logLines(): Promise<Record<string, unknown>[]>;
  close(): Promise<void>;
}

export interface FixtureOptions {
  index: number;
  students: number;
  standby: number;
  max: number;
  useDist?: boolean;
  /** Put a balancer that refuses connections before the real one (failover on every login). */
  deadBalancerFirst?: boolean;
  /** Start the session agent (default true); without it every login runs a standalone session process. */
  agent?: boolean;
  /** The pool's grace period (default 0): with one, a student's next login renews the lease (no reset). */
  graceSeconds?: number;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

export async function createGatewayFixture(options: FixtureOptions): Promise<GatewayFixture> {
  const { index } = options;
  const cleanups: (() => Promise<unknown>)[] = [];
  const close = async () => {
    for (const fn of cleanups.reverse()) await fn().catch(() => undefined);
  };
  try {
    const work = await mkdtemp(join(tmpdir(), `vzsb-gw${index}-`));
    cleanups.push(() => rm(work, { recursive: true, force: true }));
    await chmod(work, 0o755);
    const bridge = await createTestBridge(index);
    cleanups.push(() => bridge.remove());

    // The hypervisor daemon with the LXC driver.
    const leaseToken = `lease-token-gateway-test-${index}`;
    const adminToken = `admin-token-gateway-test-${index}`;
    const lxcPath = join(work, 'lxc');
    const prefix = `vzg${index}-`;
    const hypConfig = join(work, 'hypervisor.yaml');
    await writeFile(
      hypConfig,
      JSON.stringify({
        listen: { host: '127.0.0.1', port: 0 },
        tokens: { lease: [leaseToken], admin: [adminToken] },
        stateDir: join(work, 'state'),
        pool: { standby: options.standby, max: options.max, graceSeconds: options.graceSeconds ?? 0, idleSeconds: 900, checkSeconds: 5 },
        driver: { kind: 'lxc', ...lxcConfigOn(bridge, { prefix, lxcPath, baseName: `vzg${index}base`, limits: { memoryMiB: 256, pidsMax: 256 } }) },
      }),
    );
    const daemon = runCli(['hypervisor', '--config', hypConfig]);
    cleanups.push(async () => {
      if (daemon.child.exitCode === null) {
        daemon.child.kill('SIGTERM');
        await daemon.exited;
      }
      // Containers outlive the daemon by design: remove them and the base.
      const names = (await run('lxc-ls', ['-P', lxcPath, '-1'])).stdout.split('\n').filter(Boolean);
      for (const name of names) await run('lxc-destroy', ['-P', lxcPath, '-f', '-n', name]);
    });
    const listening = await daemon.waitForLog('daemon.listening', 240_000);
    const hypervisorUrl = `http://127.0.0.1:${listening.port}`;

    // The gateway, set up as on a real machine but with names of its own.
    const serviceUser = `vzsbgw${index}`;
    const studentsGroup = `vzsbst${index}`;
    const configPath = join(work, 'etc', 'gateway.yaml');
    const entry = options.useDist ? [join(ROOT, 'dist', 'shell', 'main.js')] : ['--import', TSX_LOADER, join(ROOT, 'src', 'shell', 'main.ts')];
    const balancers = options.deadBalancerFirst ? [`http://127.0.0.1:${await freePort()}`, hypervisorUrl] : [hypervisorUrl];
    const setup: GatewaySetupOptions = {
      serviceUser,
      studentsGroup,
      configPath,
      wrapperPath: join(work, 'bin', 'vzsb-shell'),
      sudoersPath: `/etc/sudoers.d/vzsb-test${index}`,
      shellsFile: join(work, 'etc', 'shells'),
      sudoPath: '/usr/bin/sudo',
      clientPath: join(work, 'bin', 'vzsb-client'),
      sessionCommand: [process.execPath, ...entry, '--session', '--config', configPath],
      cmndAlias: `VZSB_TEST${index}`,
      gateway: {
        balancers,
        token: leaseToken,
        timeouts: { leaseMs: 60_000, sshReadyMs: 15_000 },
        logFile: join(work, 'log', 'gateway.log'),
        logLevel: 'debug',
        sessionsDir: join(work, 'sessions'),
        // A session an earlier failed test left open must not hold a stopping agent for an hour.
        agentDrainSeconds: 30,
      },
    };
    await mkdir(join(work, 'bin'), { mode: 0o755 });
    cleanups.push(() => removeGateway(setup, { removeGroup: true }));
    await setupGateway(setup);

    // Students (and one outsider) with the wrapper as login shell; "*" is a password that matches nothing but is not "locked".
    const students = Array.from({ length: options.students }, (_, i) => `vzst${index}u${i}`);
    const outsider = `vzso${index}`;
    for (const user of [...students, outsider]) {
      await run('userdel', ['-r', user]);
      const groups = user === outsider ? [] : ['-G', studentsGroup];
      await runChecked('useradd', ['-m', '-p', '*', '-s', user === outsider ? '/bin/sh' : setup.wrapperPath, ...groups, user]);
      cleanups.push(() => run('userdel', ['-r', '-f', user]));
    }

    // sshd on loopback that logs students in with one client key.
    const sshDir = join(work, 'sshd');
    await mkdir(join(sshDir, 'keys'), { recursive: true });
    await mkdir('/run/sshd', { recursive: true, mode: 0o755 });
    const hostKey = generateEd25519('gateway');
    const hostKeyFile = join(sshDir, 'host_ed25519');
    await writeFile(hostKeyFile, toOpenssh(hostKey), { mode: 0o600 });
    const client = generateEd25519('student');
    const clientKeyFile = join(sshDir, 'client_ed25519');
    await writeFile(clientKeyFile, toOpenssh(client), { mode: 0o600 });
    for (const user of [...students, outsider]) await writeFile(join(sshDir, 'keys', user), client.publicKey + '\n', { mode: 0o644 });
    const sshPort = await freePort();
    const knownHostsFile = join(sshDir, 'known_hosts');
    await writeFile(knownHostsFile, `[127.0.0.1]:${sshPort} ${hostKey.publicKey}\n`);
    const sshdConfig = join(sshDir, 'sshd_config');
    await writeFile(
      sshdConfig,
      [
        `Port ${sshPort}`,
        'ListenAddress 127.0.0.1',
        `HostKey ${hostKeyFile}`,
        `PidFile ${join(sshDir, 'sshd.pid')}`,
        `AuthorizedKeysFile ${join(sshDir, 'keys', '%u')}`,
        'StrictModes no',
        'UsePAM no',
        'PasswordAuthentication no',
        'KbdInteractiveAuthentication no',
        'PermitRootLogin no',
        'PrintMotd no',
        'PrintLastLog no',
        'MaxStartups 100:30:200',
        'MaxSessions 100',
        'Subsystem sftp /usr/lib/openssh/sftp-server',
        'LogLevel ERROR',
        '',
      ].join('\n'),
    );
    const sshd: ChildProcess = spawn('/usr/sbin/sshd', ['-D', '-e', '-f', sshdConfig], { stdio: ['ignore', 'ignore', 'pipe'] });
    const sshdLog: string[] = [];
    sshd.stderr!.on('data', (d: Buffer) => sshdLog.push(d.toString()));
    cleanups.push(async () => {
      if (sshd.exitCode === null) {
        sshd.kill('SIGTERM');
        await once(sshd, 'exit');
      }
    });
    await waitForSsh({ host: '127.0.0.1', port: sshPort, timeoutMs: 10_000, what: `gateway sshd (${sshdLog.join('')})` });

    // The session agent, as the gateway's service runs it: the service user, the same entry.
    const uid = Number((await runChecked('id', ['-u', serviceUser])).stdout.trim());
    const gid = Number((await runChecked('id', ['-g', serviceUser])).stdout.trim());
    let agent: ChildProcess | undefined;
    let agentExit: Promise<number | null> = Promise.resolve(null);
    const agentLog: string[] = [];
    const startAgent = async () => {
      const child = spawn(process.execPath, [...entry, '--agent', '--config', configPath], { uid, gid, stdio: ['ignore', 'ignore', 'pipe'], cwd: '/' });
      agent = child;
      agentExit = new Promise((r) => child.once('exit', (code) => r(code)));
      let text = '';
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`the session agent did not listen within 30 s: ${text}`)), 30_000);
        child.stderr!.on('data', (d: Buffer) => {
          text += d.toString();
          agentLog.push(d.toString());
          if (/listening on/.test(text)) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once('exit', (code) => {
          clearTimeout(timer);
          reject(new Error(`the session agent exited (${code}) before listening: ${text}`));
        });
      });
    };
    const stopAgent = async () => {
      const child = agent;
      if (!child || child.exitCode !== null) return child?.exitCode ?? null;
      child.kill('SIGTERM');
      const code = await agentExit;
      agent = undefined;
      return code;
    };
    cleanups.push(async () => {
      if (agent && agent.exitCode === null) {
        agent.kill('SIGKILL');
        await agentExit;
      }
    });
    if (options.agent !== false) await startAgent();

    const original = structuredClone(setup.gateway);
    const sshOptions = ['-F', '/dev/null', '-i', clientKeyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-o', 'LogLevel=ERROR'];
    const fixture: GatewayFixture = {
      index,
      work,
      bridge,
      daemon,
      hypervisorUrl,
      leaseToken,
      adminToken,
      setup,
      sshPort,
      clientKeyFile,
      knownHostsFile,
      students,
      outsider,
      sshOptions,
      get agent() {
        return agent;
      },
      agentLog: () => agentLog.join(''),
      startAgent,
      stopAgent,
      sshArgs: (user, extra = []) => [...sshOptions, '-p', String(sshPort), ...extra, `${user}@127.0.0.1`],
      writeConfig: async (change) => {
        setup.gateway = { ...original, ...change };
        await setupGateway(setup);
      },
      restoreConfig: async () => {
        setup.gateway = structuredClone(original);
        await setupGateway(setup);
      },
      logLines: async () =>
        (await readFile(setup.gateway.logFile, 'utf8').catch(() => ''))
          .split('\n')
          .filter(Boolean)
          .map((l) => JSON.parse(l) as Record<string, unknown>),
      close,
    };
    return fixture;
  } catch (err) {
    await close();
    throw err;
  }
}

function toOpenssh(pair: { privateKeyPem: string }): string {
  return toOpensshPrivateKey(pair.privateKeyPem);
}
