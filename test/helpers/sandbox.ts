import type { TestFn } from 'ava';
import { join } from 'node:path';
import { run, type CommandResult } from '../../src/common/exec.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, type Lab } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from './deploy.js';
import { sshArgs } from './lab.js';
import { waitFor } from './wait.js';

export const VZSB_CLI = join(import.meta.dirname, '../../bin/vzsb.js');

export interface DeployedSandbox {
  readonly lab: Lab;
  readonly inventory: string;
  /** A student's login through the gateway running `script` in their container. */
  student(user: string, script: string): Promise<CommandResult>;
  /** Root on a lab host, its host key checked against the lab's known_hosts. */
  ssh(hostName: string, command: string): Promise<CommandResult>;
}

/**
 * A sandbox lab made and deployed in test.before (both hypervisors up with clean containers
 * before the first test), destroyed in test.after.always.
 */
export function useDeployedSandbox(
  test: TestFn<any>,
  prefix: string,
  options: { extraVars?: Record<string, unknown>; beforeDeploy?: () => Promise<void> } = {},
): DeployedSandbox {
  const name = `${prefix}-${process.pid}`;
  let lab: Lab | undefined;
  test.before(async (t) => {
    // A fresh machine first builds the debootstrap trees (a minute or more each).
    t.timeout(25 * 60_000, 'creating and deploying the sandbox lab');
    await pruneStaleLabs();
    await options.beforeDeploy?.();
    lab = await createSandboxLab(name, { ownerPid: process.pid });
    const r = collectingReporter();
    const result = await deploy({ inventory: inventoryFile(lab), reporter: r.reporter, extraVars: options.extraVars ?? {} });
    if (result.exitCode !== 0) throw new Error(`deploy failed: ${JSON.stringify(r.hosts.map((h) => h.error))}`);
    await waitFor('both hypervisors up with clean containers', async () => {
      const status = await run('node', [VZSB_CLI, 'pools', 'status', '--json', '-i', inventoryFile(lab!)]);
      if (status.exitCode !== 0) return undefined;
      const pools = JSON.parse(status.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
      return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) > 0) ? true : undefined;
    }, 180_000);
  });
  test.after.always(async () => {
    await destroyLab(name);
  });
  const up = (): Lab => lab ?? raise(`lab ${name} is not up (test.before failed or has not run)`);
  return {
    get lab() {
      return up();
    },
    get inventory() {
      return inventoryFile(up());
    },
    student: async (user, script) => run('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [script]))], { timeoutMs: 180_000 }),
    ssh: (hostName, command) => {
      const h = up().hosts.find((x) => x.name === hostName) ?? raise(`lab ${name} has no host ${hostName}`);
      return run('ssh', [...sshArgs(h), command], { timeoutMs: 60_000 });
    },
  };
}

function raise(message: string): never {
  throw new Error(message);
}
