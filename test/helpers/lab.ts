import type { TestFn } from 'ava';
import { randomBytes } from 'node:crypto';
import { run, type CommandResult } from '../../src/common/exec.js';
import { createLab, destroyLab, pruneStaleLabs, startLabHost, stopLabHost, type Lab, type LabHost, type LabHostSpec, type LabInit } from '../../src/lab/index.js';

/**
 * A lab for one ava test file: made in test.before, destroyed in test.after.always (also
 * when a test or the creation failed). Names are unique per file and process, so files
 * running at once get their own bridge, subnet and containers.
 */
export interface LabFixture {
  /** the lab, once test.before has run */
  readonly lab: Lab;
  readonly hosts: LabHost[];
  host(name: string): LabHost;
  /** A copy of `host` that cannot be reached: same address, a port where nothing listens. */
  unreachable(host: LabHost): LabHost;
  /** Really stop a host's container (its address stops answering) / start it again. */
  stopHost(name: string): Promise<void>;
  startHost(name: string): Promise<void>;
  /** Run a command on a host with OpenSSH, verifying its host key from the lab's known_hosts. */
  ssh(host: LabHost, command: string, options?: { user?: string; input?: string }): Promise<CommandResult>;
}

export interface UseLabOptions {
  hosts: number | LabHostSpec[];
  init?: LabInit;
  nesting?: boolean;
}

let counter = 0;

/**
 * A lab is up in seconds, but the first one on a machine waits for debootstrap of the lab
 * root filesystem (over a minute, several under load): longer than ava's inactivity timeout.
 */
export const LAB_CREATE_TIMEOUT_MS = 20 * 60_000;

export function useLab(test: TestFn<any>, options: UseLabOptions): LabFixture {
  const name = `t${process.pid}-${++counter}-${randomBytes(2).toString('hex')}`;
  const env = { ownerPid: process.pid };
  let lab: Lab | undefined;

  test.before(async (t) => {
    t.timeout(LAB_CREATE_TIMEOUT_MS, 'creating the lab');
    await pruneStaleLabs();
    lab = await createLab({ name, hosts: options.hosts, init: options.init, nesting: options.nesting }, env);
  });
  test.after.always(async () => {
    await destroyLab(name, env);
  });

  const need = (): Lab => {
    if (!lab) throw new Error(`lab ${name} is not up (test.before failed or has not run)`);
    return lab;
  };
  return {
    get lab() {
      return need();
    },
    get hosts() {
      return need().hosts;
    },
    host(hostName) {
      const h = need().hosts.find((x) => x.name === hostName);
      if (!h) throw new Error(`lab ${name} has no host ${hostName}`);
      return h;
    },
    unreachable(host) {
      // port 1 (tcpmux): nothing listens there on a lab host, the connection is refused at once
      return { ...host, port: 1 };
    },
    stopHost: (hostName) => stopLabHost(need(), hostName),
    startHost: (hostName) => startLabHost(need(), hostName),
    ssh: (host, command, opts = {}) => run('ssh', [...sshArgs(host, opts.user), command], { input: opts.input, timeoutMs: 60_000 }),
  };
}

/** OpenSSH client arguments for a lab host: the lab's key and known_hosts only, never prompts. */
export function sshArgs(host: LabHost, user = host.user): string[] {
  return [
    '-F', 'none',
    '-i', host.keyFile,
    '-o', 'IdentitiesOnly=yes',
    '-o', `UserKnownHostsFile=${host.knownHostsFile}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'ConnectTimeout=10',
    '-o', 'LogLevel=ERROR',
    '-p', String(host.port),
    `${user}@${host.address}`,
  ];
}
