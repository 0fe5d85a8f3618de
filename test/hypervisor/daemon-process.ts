import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '../../src/common/exec.js';

/** A `vzsb` CLI process run from the TypeScript sources (no build needed), for daemon tests. */
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export interface CliProcess {
  child: ChildProcess;
  stdout: string[];
  /** JSON log records the process wrote to stderr; other stderr lines as {text}. */
  logs: Record<string, unknown>[];
  /** Resolves with the first log record matching, or rejects when the process exits first. */
  waitForLog(event: string, timeoutMs?: number): Promise<Record<string, unknown>>;
  exited: Promise<number | null>;
}

export function runCli(args: string[]): CliProcess {
  const code = `import { main } from ${JSON.stringify(MAIN)}; main(process.argv.slice(1)).then((c) => { process.exitCode = c; });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stdout: string[] = [];
  const logs: Record<string, unknown>[] = [];
  const listeners = new Set<() => void>();
  let buffered = '';
  child.stdout!.on('data', (d: Buffer) => stdout.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => {
    buffered += d.toString();
    const lines = buffered.split('\n');
    buffered = lines.pop()!;
    for (const line of lines) {
      try {
        logs.push(JSON.parse(line) as Record<string, unknown>);
      } catch {
        logs.push({ text: line });
      }
    }
    for (const l of listeners) l();
  });
  // 'close', not 'exit': the last log lines on stderr are read by then.
  const exited = once(child, 'close').then(([code]) => code as number | null);
  const waitForLog = (event: string, timeoutMs = 90_000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const found = logs.find((l) => l.event === event);
        if (found) {
          cleanup();
          resolve(found);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no "${event}" log within ${timeoutMs} ms; stderr: ${JSON.stringify(logs.slice(-5))}`));
      }, timeoutMs);
      const cleanup = () => {
        clearTimeout(timer);
        listeners.delete(check);
      };
      listeners.add(check);
      void exited.then(() => {
        check();
        if (listeners.has(check)) {
          cleanup();
          reject(new Error(`exited before "${event}"; stderr: ${JSON.stringify(logs.slice(-5))}`));
        }
      });
      check();
    });
  return { child, stdout, logs, waitForLog, exited };
}

/** The config of a hypervisor daemon on loopback with the LXC driver, as the LXC daemon tests write it. */
export function lxcDaemonConfig(o: { lease: string; admin: string; stateDir: string; pool: Record<string, unknown>; driver: object; extra?: Record<string, unknown> }): string {
  return JSON.stringify({
    listen: { host: '127.0.0.1', port: 0 },
    tokens: { lease: [o.lease], admin: [o.admin] },
    stateDir: o.stateDir,
    pool: o.pool,
    ...o.extra,
    driver: { kind: 'lxc', ...o.driver },
  });
}

/** After an LXC daemon test: the daemon killed, every container and the base destroyed, the work directory and the bridge removed. */
export async function removeLxcDaemon(o: {
  daemon: CliProcess | undefined;
  driver: { list(): Promise<{ id: string }[]>; destroy(id: string): Promise<void> } | undefined;
  work: string | undefined;
  baseName: string;
  bridge: { remove(): Promise<void> } | undefined;
}): Promise<void> {
  if (o.daemon && o.daemon.child.exitCode === null) {
    o.daemon.child.kill('SIGKILL');
    await o.daemon.exited;
  }
  if (o.driver) for (const c of await o.driver.list().catch(() => [])) await o.driver.destroy(c.id).catch(() => undefined);
  if (o.work) {
    await run('lxc-destroy', ['-P', join(o.work, 'lxc'), '-n', o.baseName]);
    await rm(o.work, { recursive: true, force: true });
  }
  await o.bridge?.remove();
}
