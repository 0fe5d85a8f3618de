import { spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { VzsbError } from '../../common/errors.js';
import type { Lab } from '../../lab/index.js';
import { SANDBOX_STUDENTS } from '../../lab/students.js';

/** Kept out of the start of every vzsb command: the lab's code is loaded when a lab command runs. */
const labModule = () => import('../../lab/index.js');

interface LabArgs {
  name?: string;
  user?: string;
  lab?: string;
  command?: string[];
  hosts?: number;
  sandbox?: boolean;
  init: 'systemd' | 'script';
  nesting?: boolean;
  exitCode?: number;
}

const out = (s: string) => process.stdout.write(s + '\n');
const seconds = (started: number) => ((performance.now() - started) / 1000).toFixed(2);

/**
 * `vzsb lab up|down|list|show|login`: test hosts in LXC system containers on this machine,
 * and a student's login through a sandbox lab's gateway.
 */
export const labCommand: CommandModule<object, LabArgs> = {
  command: 'lab',
  describe: 'A local lab of SSH-reachable test hosts (LXC system containers on a private bridge)',
  builder: (yargs: Argv<object>) =>
    (yargs as Argv<LabArgs>)
      .command<LabArgs>(
        'up [name]',
        'Create a lab and write its inventory',
        (y) =>
          y
            .positional('name', { type: 'string', describe: 'Lab name (a-z, 0-9, -); default "sandbox" with --sandbox, else "lab"' })
            .option('hosts', { alias: 'n', type: 'number', describe: 'Number of hosts host1..hostN (default 4)' })
            .option('sandbox', { type: 'boolean', describe: 'The hosts of a whole sandbox: hyp1, hyp2 (run containers), bal1, gw1, with students' })
            .conflicts('sandbox', 'hosts')
            .option('init', { type: 'string', choices: ['systemd', 'script'] as const, default: 'systemd' as const, describe: 'PID 1 of the hosts' })
            .option('nesting', { type: 'boolean', describe: 'Let hosts run LXC containers of their own' })
            .example('$0 lab up --sandbox', 'hosts for every role and an inventory for vzsb deploy (lab "sandbox")')
            .example('$0 lab up demo --hosts 2 --nesting', 'two hosts that can run containers'),
        async (argv) => {
          const { createLab, createSandboxLab, inventoryFile } = await labModule();
          const { labInventoryYaml } = await import('../../lab/inventory.js');
          const started = performance.now();
          const progress = (line: string) => process.stderr.write(`vzsb: ${line}\n`);
          let lab: Lab;
          if (argv.sandbox) {
            lab = await createSandboxLab(argv.name ?? 'sandbox', { progress });
          } else {
            lab = await createLab({ name: argv.name ?? 'lab', hosts: argv.hosts ?? 4, init: argv.init, nesting: argv.nesting }, { progress });
            await writeFile(inventoryFile(lab), labInventoryYaml(lab));
          }
          out(`lab ${lab.name} is up in ${seconds(started)} s: ${lab.hosts.length} hosts on ${lab.bridge} ${lab.subnet}`);
          printHosts(lab);
          out(`inventory: ${inventoryFile(lab)}`);
          out(`deploy:    vzsb deploy ${inventoryFile(lab)}`);
          if (argv.sandbox) out(`then:      vzsb lab login ${SANDBOX_STUDENTS[0]}${lab.name === 'sandbox' ? '' : ` --lab ${lab.name}`}`);
          argv.exitCode = 0;
        },
      )
      .command<LabArgs>(
        'down [name]',
        'Remove every container, the bridge and the state of a lab',
        (y) => y.positional('name', { type: 'string', default: 'lab', describe: 'Lab name' }).example('$0 lab down sandbox', ''),
        async (argv) => {
          const { destroyLab } = await labModule();
          const started = performance.now();
          await destroyLab(argv.name!);
          out(`lab ${argv.name} is gone (${seconds(started)} s)`);
          argv.exitCode = 0;
        },
      )
      .command<LabArgs>('list', 'Names of the labs on this machine', (y) => y, async (argv) => {
        const { listLabs } = await labModule();
        for (const name of await listLabs()) out(name);
        argv.exitCode = 0;
      })
      .command<LabArgs>(
        'show [name]',
        'Hosts, addresses and files of a lab',
        (y) => y.positional('name', { type: 'string', default: 'lab', describe: 'Lab name' }),
        async (argv) => {
          const { readLab, inventoryFile } = await labModule();
          const lab = await readLab(argv.name!);
          if (!lab) throw new VzsbError('E_LAB_MISSING', `no lab ${argv.name} on this machine (vzsb lab list shows them)`);
          out(`lab ${lab.name}: ${lab.bridge} ${lab.subnet}, key ${lab.keyFile}, known_hosts ${lab.knownHostsFile}`);
          printHosts(lab);
          out(`inventory: ${inventoryFile(lab)}`);
          argv.exitCode = 0;
        },
      )
      .command<LabArgs>(
        'login <user> [command..]',
        "Log in as a student through a sandbox lab's gateway, with OpenSSH's ssh",
        (y) =>
          y
            .positional('user', { type: 'string', demandOption: true, describe: `A student of the lab (${SANDBOX_STUDENTS.join(', ')})` })
            .positional('command', { type: 'string', array: true, describe: 'Run this in the container instead of a shell' })
            .option('lab', { type: 'string', default: 'sandbox', describe: 'Lab name' })
            .example('$0 lab login student1', 'a root shell in a fresh container')
            .example("$0 lab login student2 -- 'hostname; id'", 'one command, its exit status returned'),
        async (argv) => {
          // words after `--` land in argv._ after "lab login"
          const command = [...(argv.command ?? []), ...((argv as unknown as { _: unknown[] })._.slice(2).map(String))];
          const { loginArgs } = await labModule();
          const args = await loginArgs(argv.lab!, argv.user!, command);
          argv.exitCode = await new Promise<number>((resolve, reject) => {
            const child = spawn('ssh', args, { stdio: 'inherit' });
            child.on('error', (err) => reject(new VzsbError('E_SPAWN', `cannot run ssh: ${err.message}`)));
            child.on('exit', (code, signal) => resolve(code ?? (signal ? 128 : 255)));
          });
        },
      )
      .demandCommand(1, 'Name a lab command: up, down, list, show or login.')
      .example('$0 lab up --sandbox && $0 deploy /var/lib/vzsandbox/labs/sandbox/inventory.yaml', 'a whole sandbox on this machine')
      .example('$0 lab login student1', 'then log in as a student') as unknown as Argv<LabArgs>,
  handler: () => {},
};

function printHosts(lab: Lab): void {
  const width = Math.max(4, ...lab.hosts.map((h) => h.name.length));
  out(`${'HOST'.padEnd(width)}  ${'ADDRESS'.padEnd(17)}  INIT     NESTING  GROUPS`);
  for (const h of lab.hosts) {
    out(`${h.name.padEnd(width)}  ${`${h.address}:${h.port}`.padEnd(17)}  ${h.init.padEnd(7)}  ${(h.nesting ? 'yes' : 'no').padEnd(7)}  ${['lab', ...(h.groups ?? [])].join(',')}`.trimEnd());
  }
}

