import test from 'ava';
import { join } from 'node:path';
import { run } from '../../src/common/exec.js';
import type { LabHost } from '../../src/lab/index.js';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter, labInventory } from '../helpers/deploy.js';
import { useDeployedSandbox, VZSB_CLI } from '../helpers/sandbox.js';
import { waitFor } from '../helpers/wait.js';

// A hostile student, in a deployed lab: root in their own container through the gateway,
// trying to break out of the jail. Each attack must fail while ordinary work still works.
const sandbox = useDeployedSandbox(test, 'hostile');
const { student, ssh } = sandbox;

const FULL = /No space left on device|Disk quota exceeded/;
/** The deployed defaults (playbooks/hypervisor.yaml). */
const DISK_KIB = 4096 * 1024;
const INODES = 200_000;

/** `df -P` of / in the output of `df -P -k /; df -P -i /`: [size KiB, used KiB, inodes]. */
function dfFields(stdout: string): [number, number, number] {
  const rows = stdout.trim().split('\n').filter((l) => /^\S+\s+\d+\s+\d+/.test(l));
  const k = rows[0]!.trim().split(/\s+/).map(Number);
  const i = rows[1]!.trim().split(/\s+/).map(Number);
  return [k[1]!, k[2]!, i[1]!];
}

test.serial('disk: df and df -i in the container show its quota, not the hypervisor disk', async (t) => {
  const r = await student('student1', 'df -P -k /; df -P -i /');
  t.is(r.exitCode, 0, r.stderr);
  const [size, , inodes] = dfFields(r.stdout);
  t.true(size <= DISK_KIB && size > DISK_KIB * 0.95, `df: ${r.stdout}`);
  t.true(inodes <= INODES && inodes > INODES * 0.95, `df -i: ${r.stdout}`);
});

test.serial('disk: 6 GiB cannot be written; 250,000 files cannot be made; ordinary files up to the quota can', async (t) => {
  const big = await student('student1', 'fallocate -l 6G /root/fill; echo "exit $?"; rm -f /root/fill');
  t.regex(big.stdout + big.stderr, FULL);
  t.regex(big.stdout, /exit [1-9]/);
  const many = await student('student1', 'mkdir /root/many && cd /root/many || exit 9; seq 1 250000 | xargs touch 2>&1 | tail -n 1; ls | wc -l');
  t.regex(many.stdout, FULL, many.stderr);
  t.true(Number(many.stdout.trim().split('\n').pop()) < INODES, many.stdout);
  const work = await student('student1', 'rm -rf /root/many; fallocate -l 3G /root/big && dd if=/dev/urandom of=/root/data bs=1M count=32 status=none && sync && ls -s --block-size=M /root/big /root/data && rm /root/big /root/data');
  t.is(work.exitCode, 0, work.stderr);
  t.regex(work.stdout, /^307[23]M \/root\/big$/m);
});

test.serial('disk: a full container gets ENOSPC; another student and the hypervisor still write; a reset gives the space back', async (t) => {
  const fill = await student('student1', 'hostname -I; fallocate -l "$(df -P -k / | tail -n 1 | awk "{print \\$4}")K" /root/all; dd if=/dev/zero of=/root/more bs=1M count=8 2>&1; df -P -k / | tail -n 1');
  t.regex(fill.stdout, FULL, 'the full container gets ENOSPC in its own writes');
  t.regex(fill.stdout, /\s100%\s/);
  const address = fill.stdout.trim().split(/\s+/)[0]!;
  const hyp = `hyp${address.split('.')[2]}`;
  const other = await student('student2', 'dd if=/dev/zero of=/root/mine bs=1M count=64 status=none && sync && echo written');
  t.is(other.stdout.trim(), 'written', `another student writes: ${other.stderr}`);
  const host = await ssh(hyp, 'dd if=/dev/zero of=/var/lib/vzsandbox/containers/host-write bs=1M count=16 status=none && sync && rm /var/lib/vzsandbox/containers/host-write && touch /root/host-write && rm /root/host-write && echo written');
  t.is(host.stdout.trim(), 'written', `the hypervisor ${hyp} writes: ${host.stderr}`);

  const reset = await run('node', [VZSB_CLI, 'pools', 'reset', '--all', '--force', '-i', sandbox.inventory]);
  t.is(reset.exitCode, 0, reset.stdout + reset.stderr);
  const fresh = await waitFor('a fresh container for student1', async () => {
    const r = await student('student1', 'ls /root; df -P -k /; df -P -i /');
    return r.exitCode === 0 ? r.stdout : undefined;
  }, 120_000);
  t.notRegex(fresh, /\ball\b|\bmore\b/, 'the new container does not have the old files');
  const [, used] = dfFields(fresh);
  t.true(used < 16 * 1024, `the new container's disk is empty again: ${fresh}`);
});

test.serial('disk: the hypervisor play refuses a host without loop devices before changing anything, saying what it needs', async (t) => {
  // bal1 is a lab host without the loop devices the hypervisors get.
  const [bal, gw] = ['bal1', 'gw1'].map((n) => sandbox.lab.hosts.find((h) => h.name === n)!) as [LabHost, LabHost];
  // The play's templates name the balancers and gateways: they are listed, only bal1 is played.
  const inventory = labInventory({ hypervisors: [bal], balancers: [bal], gateways: [gw] }, { container_subnet: '10.250.9.0/24' });
  const r = collectingReporter();
  const result = await deploy({ inventory, playbook: join(import.meta.dirname, '../../playbooks/hypervisor.yaml'), limit: 'bal1', reporter: r.reporter, ssh: { knownHostsFiles: [bal.knownHostsFile] } });
  t.is(result.exitCode, 2);
  t.regex(JSON.stringify(r.hosts.map((h) => h.error)), /disk quotas are possible on this host/);
  const failed = r.tasks.find((e) => e.host === 'bal1' && e.status === 'failed');
  t.regex(failed?.stderr ?? '', /cannot give containers their disk and inode quotas: it needs loop devices \(\/dev\/loop-control/);
  t.deepEqual(r.changed('bal1'), [], 'nothing was changed');
  const after = await ssh('bal1', 'test -e /etc/vzsandbox/hypervisor.yaml || echo absent');
  t.is(after.stdout, 'absent\n');
});
