import type { TestFn } from 'ava';
import { join } from 'node:path';
import { run, type CommandResult } from '../../src/common/exec.js';
import { createSandboxLab, destroyLab, inventoryFile, loginArgs, pruneStaleLabs, type Lab } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from './deploy.js';

/**
 * One sandbox lab per test file, deployed with `vzsb deploy` (site.yaml over real SSH: two
 * hypervisors with LXC inside, a balancer, a gateway) before the first test and destroyed
 * after the last. Tests then act as students through the gateway, or as root on a host.
 */
export interface DeployedSandbox {
  readonly lab: Lab;
  readonly inventory: string;
  /** As root on a lab host, over OpenSSH with the lab's known_hosts. */
  ssh(hostName: string, command: string): Promise<CommandResult>;
  /** A student's login through the gateway running `script` (as root in their container). */
  student(user: string, script: string, timeoutMs?: number): Promise<CommandResult>;
}

const cli = join(import.meta.dirname, '../../bin/vzsb.js');

export function useDeployedSandbox(test: TestFn<any>, options: { name: string; extraVars?: Record<string, unknown>; beforeDeploy?: () => Promise<void> }): DeployedSandbox {
  const name = `${options.name}-${process.pid}`;
  let lab: Lab | undefined;
  const need = () => {
    if (!lab) throw new Error(`lab ${name} is not up (test.before failed)`);
    return lab;
  };
  test.before(async (t) => {
    // A fresh machine first builds the debootstrap trees (a minute or more each).
    t.timeout(25 * 60_000, 'creating and deploying the sandbox lab');
    await pruneStaleLabs();
    await options.beforeDeploy?.();
    lab = await createSandboxLab(name, { ownerPid: process.pid });
    const r = collectingReporter();
    const result = await deploy({ inventory: inventoryFile(lab), reporter: r.reporter, extraVars: options.extraVars ?? {} });
    if (result.exitCode !== 0) throw new Error(`deploy failed: ${JSON.stringify(r.hosts.map((h) => h.error))}`);
    let last = '';
    await waitUntil('both hypervisors up with clean containers', async () => {
      const status = await run('node', [cli, 'pools', 'status', '--json', '-i', inventoryFile(lab!)]);
      last = status.stdout + status.stderr;
      if (status.exitCode !== 0) return false;
      const pools = JSON.parse(status.stdout) as { hypervisors: Array<{ up: boolean; capacity?: { clean: number } }> };
      return pools.hypervisors.every((p) => p.up && (p.capacity?.clean ?? 0) > 0);
    }, 300_000).catch(async (err: Error) => {
      // What the hypervisors said, for the failure message.
      const logs = await Promise.all(lab!.hosts.filter((h) => h.groups?.includes('hypervisors')).map(async (h) => {
        const r = await sshTo(lab!, h.name, 'journalctl -u vzsb-hypervisor --no-pager -n 25 2>&1 | cut -c1-400');
        return `--- ${h.name}\n${r.stdout}${r.stderr}`;
      }));
      throw new Error(`${err.message}\nlast pools status: ${last}\n${logs.join('\n')}`);
    });
  });
  test.after.always(async () => {
    await destroyLab(name);
  });
  return {
    get lab() {
      return need();
    },
    get inventory() {
      return inventoryFile(need());
    },
    ssh(hostName, command) {
      return sshTo(need(), hostName, command);
    },
    async student(user, script, timeoutMs = 120_000) {
      return run('ssh', ['-o', 'BatchMode=yes', ...(await loginArgs(name, user, [script]))], { timeoutMs });
    },
  };
}

function sshTo(lab: Lab, hostName: string, command: string): Promise<CommandResult> {
  const host = lab.hosts.find((h) => h.name === hostName);
  if (!host) throw new Error(`lab ${lab.name} has no host ${hostName}`);
  return run('ssh', ['-F', 'none', '-i', lab.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${lab.knownHostsFile}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', `root@${host.address}`, command], { timeoutMs: 60_000 });
}

/** Poll until `probe` says yes, backing off to 2 s; a clear error naming `what` on timeout. */
export async function waitUntil(what: string, probe: () => Promise<boolean>, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (let delay = 100; ; delay = Math.min(delay * 2, 2000)) {
    if (await probe()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, delay));
  }
}
