import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, runChecked } from '../../src/common/exec.js';

/**
 * Real terminals for login tests: a private tmux server (its own socket name) whose panes run
 * `ssh -tt` to the gateway. Panes stay after their program exits so the last screen can be
 * read. Waiting polls the screen until a pattern shows, up to a deadline.
 */
export interface Terminals {
  open(name: string, argv: string[], size: { cols: number; rows: number }): Promise<void>;
  screen(name: string): Promise<string>;
  waitFor(name: string, pattern: RegExp, timeoutMs?: number): Promise<RegExpMatchArray>;
  type(name: string, text: string): Promise<void>;
  keys(name: string, ...keys: string[]): Promise<void>;
  resize(name: string, size: { cols: number; rows: number }): Promise<void>;
  /** The exit status of the pane's program once it ended (128+n for signal n, as sh reports it). */
  exitStatus(name: string, timeoutMs?: number): Promise<number>;
  close(): Promise<void>;
}

export async function createTerminals(socket: string): Promise<Terminals> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-tmux-'));
  const conf = join(dir, 'tmux.conf');
  await writeFile(conf, 'set -g remain-on-exit on\nset -g history-limit 5000\n');
  const tmux = (...args: string[]) => runChecked('tmux', ['-L', socket, '-f', conf, ...args]);
  // A server left by a killed run of the same test file would still hold its session names.
  await run('tmux', ['-L', socket, 'kill-server']);
  const poll = async <T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number, last: () => Promise<string>): Promise<T> => {
    const deadline = performance.now() + timeoutMs;
    let delay = 20;
    for (;;) {
      const got = await probe();
      if (got !== undefined) return got;
      if (performance.now() > deadline) throw new Error(`${what} within ${timeoutMs} ms; screen:\n${await last()}`);
      await new Promise((r) => setTimeout(r, delay));
      delay = Math.min(200, delay * 2);
    }
  };
  const screen = async (name: string) => (await tmux('capture-pane', '-p', '-J', '-S', '-200', '-t', name)).stdout;
  return {
    // The pane runs `sh -c 'argv; echo $? > file'`: tmux 3.3 sometimes leaves a quickly exiting
    // pane program unreaped (a zombie, no pane_dead_status), so the status comes from sh instead.
    open: async (name, argv, size) => {
      const script = 'st=$1; shift; "$@"; echo $? > "$st"';
      await tmux('new-session', '-d', '-s', name, '-x', String(size.cols), '-y', String(size.rows), '--', '/bin/sh', '-c', script, 'sh', join(dir, `${name}.status`), ...argv);
    },
    screen,
    waitFor: (name, pattern, timeoutMs = 30_000) =>
      poll(`no ${pattern} on ${name}`, async () => (await screen(name)).match(pattern) ?? undefined, timeoutMs, () => screen(name)),
    type: async (name, text) => {
      await tmux('send-keys', '-t', name, '-l', text);
      await tmux('send-keys', '-t', name, 'Enter');
    },
    keys: async (name, ...keys) => {
      await tmux('send-keys', '-t', name, ...keys);
    },
    resize: async (name, size) => {
      await tmux('resize-window', '-t', name, '-x', String(size.cols), '-y', String(size.rows));
    },
    exitStatus: (name, timeoutMs = 30_000) =>
      poll(
        `${name} did not end`,
        async () => {
          const text = await readFile(join(dir, `${name}.status`), 'utf8').catch(() => '');
          return /^\d+\n$/.test(text) ? Number(text) : undefined;
        },
        timeoutMs,
        () => screen(name),
      ),
    close: async () => {
      await run('tmux', ['-L', socket, 'kill-server']);
      await rm(dir, { recursive: true, force: true });
    },
  };
}
