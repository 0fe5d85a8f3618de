/**
 * Deploy benchmark: the same 20-task no-op playbook applied to N lab hosts (real sshd in LXC
 * system containers, systemd init) by vzsb and by ansible-playbook (Debian's ansible-core,
 * pipelining on), plus the floor: N parallel OpenSSH logins that run every check of the
 * playbook as one script.
 *
 *   npm run bench:deploy -- [--hosts 4] [--runs 5] [--forks N] [--ansible-defaults-only] [--keep]
 *
 * `--ansible-defaults-only` leaves out the second Ansible run (gather_facts: false), which
 * halves a long benchmark at many hosts.
 *
 * Both tools run with the same number of forks (hosts worked on at once; default all of them,
 * as the floor). Prints the median of
 * each and the ratios. Runs alternate between tools to spread noise.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { run } from '../src/common/exec.js';
import { createLab, destroyLab, type LabHost } from '../src/lab/index.js';
import { loadInventory, selectHosts } from '../src/provision/inventory/index.js';
import { compileHost } from '../src/provision/host-program.js';
import { operations } from '../src/provision/operations/index.js';
import { loadPlaybook } from '../src/provision/playbook/load.js';
import { factsScript, newNonce } from '../src/provision/script.js';
import { createTemplating } from '../src/provision/templating.js';
import { fmtMs, median, timed } from './stats.js';

const args = process.argv.slice(2);
const option = (name: string, fallback: number) => (args.includes(name) ? Number(args[args.indexOf(name) + 1]) || fallback : fallback);
const runs = option('--runs', 5);
const hostCount = option('--hosts', 4);
// every host at once by default, as the floor's N logins (and as 10 forks did at 4 hosts)
const forks = option('--forks', hostCount);
const keep = args.includes('--keep');
const noFactsVariant = !args.includes('--ansible-defaults-only');
const root = join(import.meta.dirname, '..');
const vzsbPlaybook = join(root, 'bench/fixtures/noop-20.vzsb.yaml');
const ansiblePlaybook = join(root, 'bench/fixtures/noop-20.ansible.yaml');
const labName = `bench-deploy-${process.pid}`;

function inventoryFor(hosts: LabHost[]): string {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-bench-'));
  const file = join(dir, 'inventory.yaml');
  writeFileSync(
    file,
    stringify({
      all: {
        vars: { ansible_python_interpreter: '/usr/bin/python3' },
        hosts: Object.fromEntries(hosts.map((h) => [h.name, { ansible_host: h.address, ansible_port: h.port, ansible_user: h.user, ansible_ssh_private_key_file: h.keyFile }])),
      },
    }),
  );
  return file;
}

async function main() {
  const ansible = await run('ansible-playbook', ['--version']).catch(() => undefined);
  if (!ansible || ansible.failed) throw new Error('ansible-playbook not found: apt-get install ansible-core');
  process.stdout.write(`creating a lab of ${hostCount} hosts (${labName})...\n`);
  const lab = await createLab({ name: labName, hosts: hostCount }, { ownerPid: process.pid, progress: (line) => process.stdout.write(`${line}\n`) });
  try {
    const known = lab.hosts[0]!.knownHostsFile;
    const inventory = inventoryFor(lab.hosts);
    const vzsb = () => run('node', [join(root, 'bin/vzsb.js'), 'deploy', inventory, vzsbPlaybook, '--known-hosts', known, '--forks', String(forks), '--json'], { timeoutMs: 300_000 });
    const ansibleEnv = {
      ...process.env,
      ANSIBLE_PIPELINING: 'True',
      ANSIBLE_HOST_KEY_CHECKING: 'True',
      ANSIBLE_SSH_ARGS: `-C -o ControlMaster=auto -o ControlPersist=60s -o UserKnownHostsFile=${known} -o GlobalKnownHostsFile=/dev/null`,
      ANSIBLE_NOCOLOR: '1',
      ANSIBLE_FORKS: String(forks),
      ANSIBLE_LOCAL_TEMP: mkdtempSync(join(tmpdir(), 'ansible-tmp-')),
    };
    // Ansible as it runs by default (gather_facts on: vzsb gathers its facts too), and without
    // fact gathering (its fastest).
    const withFacts = join(mkdtempSync(join(tmpdir(), 'vzsb-bench-pb-')), 'noop-20.ansible-facts.yaml');
    writeFileSync(withFacts, readFileSync(ansiblePlaybook, 'utf8').replace(/^  gather_facts: false\n/m, ''));
    const ansibleRun = (playbook = withFacts) => run('ansible-playbook', ['-i', inventory, playbook], { env: ansibleEnv, timeoutMs: 1_800_000 });

    // The floor: every check of the playbook, as the one script vzsb sends, over N fresh OpenSSH logins at once.
    const inv = await loadInventory(inventory);
    const playbook = await loadPlaybook(vzsbPlaybook, { modules: new Set(operations.keys()) });
    const checks = new Map<string, string>();
    for (const h of lab.hosts) {
      const program = await compileHost(inv.hosts.get(h.name)!, playbook.plays, {
        inventory: inv, plays: playbook.plays, tags: [], skipTags: [], extraVars: {}, diff: false, templating: createTemplating(), templateDirs: [],
      });
      checks.set(h.name, factsScript(newNonce(), program.facts));
    }
    void selectHosts;
    const floor = () =>
      Promise.all(
        lab.hosts.map((h) =>
          run('ssh', ['-F', 'none', '-i', h.keyFile, '-o', 'IdentitiesOnly=yes', '-o', `UserKnownHostsFile=${known}`, '-o', 'StrictHostKeyChecking=yes', '-o', 'BatchMode=yes', '-p', String(h.port), `${h.user}@${h.address}`, 'sh -s'], { input: checks.get(h.name)! }),
        ),
      );

    process.stdout.write('priming: first vzsb run applies the playbook; ansible must then find nothing to change\n');
    const prime = await vzsb();
    if (prime.exitCode !== 0) throw new Error(`vzsb prime run failed:\n${prime.stdout.slice(-3000)}\n${prime.stderr}`);
    const ansiblePrime = await ansibleRun();
    if (ansiblePrime.exitCode !== 0) throw new Error(`ansible-playbook failed:\n${ansiblePrime.stdout.slice(-3000)}`);
    const ansibleChanged = [...ansiblePrime.stdout.matchAll(/changed=(\d+)/g)].reduce((a, m) => a + Number(m[1]), 0);
    process.stdout.write(`ansible after vzsb: changed=${ansibleChanged} (0 means both tools agree on the state)\n`);

    const t = { vzsb: [] as number[], ansible: [] as number[], ansibleNoFacts: [] as number[], floor: [] as number[] };
    let roundTrips = 0;
    let changedNoop = 0;
    for (let i = 0; i < runs; i++) {
      const v = await timed(vzsb);
      if (v.value.exitCode !== 0) throw new Error(`vzsb failed: ${v.value.stdout.slice(-2000)}`);
      for (const line of v.value.stdout.split('\n')) {
        if (!line.includes('"host_end"')) continue;
        const e = JSON.parse(line);
        roundTrips = Math.max(roundTrips, e.stats.roundTrips);
        changedNoop += e.changed;
      }
      t.vzsb.push(v.ms);
      const a = await timed(ansibleRun);
      if (a.value.exitCode !== 0) throw new Error(`ansible-playbook failed: ${a.value.stdout.slice(-2000)}`);
      t.ansible.push(a.ms);
      if (noFactsVariant) {
        const an = await timed(() => ansibleRun(ansiblePlaybook));
        if (an.value.exitCode !== 0) throw new Error(`ansible-playbook failed: ${an.value.stdout.slice(-2000)}`);
        t.ansibleNoFacts.push(an.ms);
      }
      const f = await timed(floor);
      if (f.value.some((r) => r.exitCode !== 0)) throw new Error('floor ssh run failed');
      t.floor.push(f.ms);
      const noFacts = noFactsVariant ? `  ansible without facts ${fmtMs(t.ansibleNoFacts.at(-1)!)}` : '';
      process.stdout.write(`run ${i + 1}/${runs}: vzsb ${fmtMs(v.ms)}  ansible ${fmtMs(a.ms)}${noFacts}  floor ${fmtMs(f.ms)}\n`);
    }
    const mv = median(t.vzsb);
    const ma = median(t.ansible);
    const mf = median(t.floor);
    const man = noFactsVariant ? median(t.ansibleNoFacts) : NaN;
    process.stdout.write(
      [
        '',
        `20-task no-op playbook on ${hostCount} hosts, ${forks} forks, median of ${runs} runs:`,
        `  vzsb deploy                  ${fmtMs(mv).padStart(10)}   (max ${roundTrips} round trips per host after connecting; changed=${changedNoop})`,
        `  ansible-playbook (pipelined) ${fmtMs(ma).padStart(10)}   (its defaults: gather_facts on, as vzsb gathers its own)`,
        ...(noFactsVariant ? [`  ansible-playbook, no facts   ${fmtMs(man).padStart(10)}   (gather_facts: false, its fastest)`] : []),
        `  floor: ${`${hostCount} parallel ssh logins`.padEnd(23)} ${fmtMs(mf).padStart(10)}`,
        `  ansible / vzsb   = ${(ma / mv).toFixed(1)}x${noFactsVariant ? `   (without facts: ${(man / mv).toFixed(1)}x)` : ''}`,
        `  vzsb / floor     = ${(mv / mf).toFixed(2)}x`,
        '',
      ].join('\n'),
    );
  } finally {
    if (!keep) await destroyLab(labName);
    else process.stdout.write(`kept lab ${labName}; remove it with: vzsb lab down ${labName}\n`);
  }
}

main().catch((err) => {
  process.stderr.write(`bench:deploy failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exitCode = 1;
});
