import { spawn } from 'node:child_process';
import { VzsbError } from './errors.js';

/** The one shape of a finished command (execa-like). Never thrown for a non-zero exit. */
export interface CommandResult {
  command: string;
  exitCode: number;
  signal: string | null;
  stdout: string;
  stderr: string;
  durationMs: number;
  timedOut: boolean;
  failed: boolean;
}

export interface RunOptions {
  input?: string | Buffer;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  timeoutMs?: number;
}

export type Runner = (file: string, args: readonly string[], options?: RunOptions) => Promise<CommandResult>;

/** Run a program without a shell. Resolves on exit whatever the code; rejects only if it cannot start. */
export const run: Runner = (file, args, options = {}) =>
  new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(file, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    let timedOut = false;
    const timer = options.timeoutMs
      ? setTimeout(() => {
          timedOut = true;
          child.kill('SIGKILL');
        }, options.timeoutMs)
      : undefined;
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(new VzsbError('E_SPAWN', `cannot run ${file}: ${e.message}`, { cause: e }));
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      const exitCode = code ?? 128;
      resolve({
        command: [file, ...args].join(' '),
        exitCode,
        signal,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        durationMs: performance.now() - started,
        timedOut,
        failed: exitCode !== 0 || timedOut,
      });
    });
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });

/** Run and throw a VzsbError with the end of stderr when the command fails. */
export async function runChecked(file: string, args: readonly string[], options?: RunOptions, runner: Runner = run): Promise<CommandResult> {
  const result = await runner(file, args, options);
  if (result.failed) throw commandError(result);
  return result;
}

export function commandError(result: CommandResult): VzsbError {
  const why = result.timedOut ? 'timed out' : `failed with exit code ${result.exitCode}`;
  const tail = result.stderr.trim().split('\n').slice(-5).join('\n');
  return new VzsbError('E_COMMAND', `Command ${why}: ${truncate(result.command, 200)}${tail ? `\n${tail}` : ''}`, {
    details: result.stderr,
  });
}

function truncate(s: string, n: number): string {
  return s.length > n ? s.slice(0, n - 3) + '...' : s;
}
