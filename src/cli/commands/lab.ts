import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { VzsbError } from '../../common/errors.js';
import { createLab, destroyLab, listLabs, readLab, type Lab, type LabHostSpec } from '../../lab/index.js';
import { labInventoryYaml } from '../../lab/inventory.js';

interface LabArgs {
  action: string;
  name: string;
  hosts?: number;
  sandbox?: boolean;
  init: 'systemd' | 'script';
  nesting?: boolean;
  exitCode?: number;
}

/** One host per role, two hypervisors (so failover can be tried); hypervisors run containers. */
const SANDBOX_HOSTS: LabHostSpec[] = [
  { name: 'hyp1', nesting: true, groups: ['hypervisors'] },
  { name: 'hyp2', nesting: true, groups: ['hypervisors'] },
  { name: 'bal1', groups: ['balancers'] },
  { name: 'gw1', groups: ['gateways'] },
];

/** `vzsb lab up|down|list|show`: test hosts in LXC system containers on this machine. */
export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab <action> [name]',
  describe: 'Make or remove a local lab of SSH-reachable test hosts (LXC system containers on a private bridge)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('action', { type: 'string', choices: ['up', 'down', 'list', 'show'], demandOption: true, describe: 'up: create; down: destroy; list: lab names; show: hosts of a lab' })
      .positional('name', { type: 'string', default: 'lab', describe: 'Lab name (a-z, 0-9, -)' })
      .option('hosts', { alias: 'n', type: 'number', describe: 'Number of hosts host1..hostN (up; default 4)' })
      .option('sandbox', { type: 'boolean', describe: 'The hosts of a whole sandbox (up): hyp1, hyp2 (nesting), bal1, gw1 in groups hypervisors, balancers, gateways' })
      .conflicts('sandbox', 'hosts')
      .option('init', { type: 'string', choices: ['systemd', 'script'], default: 'systemd', describe: 'PID 1 of the hosts (up)' })
      .option('nesting', { type: 'boolean', describe: 'Let hosts run LXC containers of their own (up)' })
      .example('$0 lab up', 'four hosts host1..host4 in lab "lab", with an inventory for vzsb deploy')
      .example('$0 lab up demo --hosts 2 --nesting', 'two hosts that can run containers')
      .example('$0 lab up sandbox --sandbox', 'hosts for every role, with an inventory grouped by role')
      .example('$0 lab down demo', 'remove every container, the bridge and the state of lab "demo"') as unknown as Argv<LabArgs>,
  handler: async (argv) => {
    const out = (s: string) => process.stdout.write(s + '\n');
    switch (argv.action) {
      case 'up': {
        const started = performance.now();
        const lab = await createLab(
          { name: argv.name, hosts: argv.sandbox ? SANDBOX_HOSTS : (argv.hosts ?? 4), init: argv.init, nesting: argv.nesting },
          { progress: (line) => process.stderr.write(`vzsb: ${line}\n`) },
        );
        const inventory = join(lab.dir, 'inventory.yaml');
        await writeFile(inventory, labInventoryYaml(lab));
        out(`lab ${lab.name} is up in ${((performance.now() - started) / 1000).toFixed(2)} s: ${lab.hosts.length} hosts on ${lab.bridge} ${lab.subnet}`);
        printHosts(lab, out);
        out(`inventory: ${inventory}`);
        out(`ssh: ssh -i ${lab.keyFile} -o UserKnownHostsFile=${lab.knownHostsFile} root@${lab.hosts[0]!.address}`);
        out(`deploy: vzsb deploy ${inventory} --known-hosts ${lab.knownHostsFile}`);
        break;
      }
      case 'down': {
        const started = performance.now();
        await destroyLab(argv.name);
        out(`lab ${argv.name} is gone (${((performance.now() - started) / 1000).toFixed(2)} s)`);
        break;
      }
      case 'list':
        for (const name of await listLabs()) out(name);
        break;
      case 'show': {
        const lab = await readLab(argv.name);
        if (!lab) throw new VzsbError('E_LAB_MISSING', `no lab ${argv.name} on this machine (vzsb lab list shows them)`);
        out(`lab ${lab.name}: ${lab.bridge} ${lab.subnet}, key ${lab.keyFile}, known_hosts ${lab.knownHostsFile}`);
        printHosts(lab, out);
        break;
      }
    }
    argv.exitCode = 0;
  },
};

function printHosts(lab: Lab, out: (s: string) => void): void {
  const width = Math.max(4, ...lab.hosts.map((h) => h.name.length));
  out(`${'HOST'.padEnd(width)}  ${'ADDRESS'.padEnd(17)}  INIT     NESTING  GROUPS`);
  for (const h of lab.hosts) {
    out(`${h.name.padEnd(width)}  ${`${h.address}:${h.port}`.padEnd(17)}  ${h.init.padEnd(7)}  ${(h.nesting ? 'yes' : 'no').padEnd(7)}  ${['lab', ...(h.groups ?? [])].join(',')}`.trimEnd());
  }
}
