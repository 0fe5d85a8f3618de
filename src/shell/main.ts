/**
 * Entry of the gateway session process: `node <pkg>/dist/shell/main.js --session`, started by
 * the vzsb-shell wrapper through sudo as the service user. It is on every login's path, so it
 * loads only what a session needs, and ssh2 only once a lease is on its way.
 *
 * Hardening that must happen before anything reads the token:
 * - SIGUSR1 would open Node's inspector on loopback (readable by anyone on the host); a
 *   listener disables that, and a session whose inspector is open anyway stops.
 * - the working directory is the student's: move to / so that nothing (a core file, a
 *   relative path) lands in a directory the student controls.
 */
import { realpathSync } from 'node:fs';
import inspector from 'node:inspector';
import { fileURLToPath } from 'node:url';
import { isConfigurationError } from '../common/error-catalog.js';
import { studentLine } from './student-message.js';

process.on('SIGUSR1', () => {});
process.on('SIGUSR2', () => {});
process.chdir('/');

export async function sessionMain(argv: readonly string[]): Promise<number> {
  if ((argv[0] !== '--session' && argv[0] !== '--agent') || argv.length > 3 || (argv.length > 1 && (argv[1] !== '--config' || !argv[2]))) {
    process.stderr.write('usage: main.js --session|--agent [--config /etc/vzsandbox/gateway.yaml]\n');
    return 2;
  }
  if (inspector.url()) {
    process.stderr.write('vzsb: refusing to run with the inspector open [E_INTERNAL]\n');
    return 255;
  }
  const { DEFAULT_CONFIG_PATH } = await import('./config.js');
  const configPath = argv[1] === '--config' && argv[2] ? argv[2] : DEFAULT_CONFIG_PATH;
  if (argv[0] === '--agent') return agentMain(configPath);
  const { runSession } = await import('./session.js');
  return runSession({
    env: process.env,
    io: { stdin: process.stdin, stdout: process.stdout, stderr: process.stderr, term: 'xterm-256color' },
    configPath,
    onEndSignal: (handler) => {
      const signals: NodeJS.Signals[] = ['SIGHUP', 'SIGTERM', 'SIGINT', 'SIGQUIT'];
      const h = (s: NodeJS.Signals) => handler(s);
      for (const s of signals) process.on(s, h);
      // Ctrl-Z before the terminal is raw must not stop a process the student cannot resume.
      process.on('SIGTSTP', () => {});
      return () => {
        for (const s of signals) process.off(s, h);
      };
    },
  });
}

/**
 * The session agent (agent.ts) as a service: runs until SIGTERM or SIGINT, then drains.
 * Exit 0 after a stop, 1 on a bad config, 3 when it cannot listen.
 */
async function agentMain(configPath: string): Promise<number> {
  const { startAgent } = await import('./agent.js');
  let agent;
  try {
    agent = await startAgent({ configPath });
  } catch (err) {
    const code = (err as { code?: string }).code;
    process.stderr.write(`vzsb: session agent: ${err instanceof Error ? err.message : String(err)}\n`);
    return isConfigurationError(code) ? 1 : 3;
  }
  process.stderr.write(`vzsb: session agent listening on ${agent.socketPath}\n`);
  process.on('SIGHUP', () => agent.reload());
  process.on('SIGPIPE', () => {});
  // A fault in one session's code must not end every other student's session.
  process.on('uncaughtException', (err) => process.stderr.write(`vzsb: session agent: uncaught: ${err.stack ?? err.message}\n`));
  process.on('unhandledRejection', (err) => process.stderr.write(`vzsb: session agent: unhandled: ${String(err)}\n`));
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      process.stderr.write(`vzsb: session agent: ${signal}, draining ${agent.sessions()} session(s)\n`);
      resolve();
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
  });
  await agent.stop();
  return 0;
}

if (isEntry(process.argv[1])) {
  sessionMain(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(studentLine(err));
      process.exit(255);
    },
  );
}

function isEntry(script: string | undefined): boolean {
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}
