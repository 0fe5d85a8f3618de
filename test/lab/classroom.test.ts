/**
 * A lab of classroom size: 24 hosts with systemd as PID 1. With the kernel's default
 * fs.inotify.max_user_instances of 128, systemd in about the twentieth host failed at boot
 * ("Failed to create control group inotify object: Too many open files"): every privileged
 * host's systemd counts against root's instances. The lab raises the limit itself and says so.
 *
 * The test sets the limit back to 128 first (restoring the value it found afterwards), so that
 * it sees the raise happen. Needs root and LXC; run under the heavy lock.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { run } from '../../src/common/exec.js';
import { createLab, destroyLab, pruneStaleLabs, type Lab } from '../../src/lab/index.js';
import { LAB_CREATE_TIMEOUT_MS, sshArgs } from '../helpers/lab.js';

const HOSTS = 24;
const LIMIT = '/proc/sys/fs/inotify/max_user_instances';
const name = `t${process.pid}-class-${randomBytes(2).toString('hex')}`;
const found = readFileSync(LIMIT, 'utf8').trim();
let lab: Lab | undefined;

test.after.always(async () => {
  await destroyLab(name, { ownerPid: process.pid });
  writeFileSync(LIMIT, `${found}\n`);
});

test(`${HOSTS} systemd hosts boot to "running" from the default inotify limit: the lab raises it and says so`, async (t) => {
  t.timeout(LAB_CREATE_TIMEOUT_MS, 'creating the lab');
  await pruneStaleLabs();
  writeFileSync(LIMIT, '128\n');
  const lines: string[] = [];
  lab = await createLab({ name, hosts: HOSTS }, { ownerPid: process.pid, progress: (line) => lines.push(line) });
  t.regex(lines.join('\n'), new RegExp(`raised fs\\.inotify\\.max_user_instances from 128 to \\d+ for ${HOSTS} lab hosts`));
  t.true(Number(readFileSync(LIMIT, 'utf8')) > 128);
  const states = await Promise.all(lab.hosts.map((h) => run('ssh', [...sshArgs(h), 'systemctl is-system-running --wait'], { timeoutMs: 120_000 })));
  t.deepEqual(
    states.map((r, i) => `${lab!.hosts[i]!.name}: ${r.stdout.trim()}`),
    lab.hosts.map((h) => `${h.name}: running`),
  );
});
