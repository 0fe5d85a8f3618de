import type { Argv, CommandModule } from 'yargs';

interface SshConfigArgs {
  inventory: string;
  student: string;
  gateway?: string;
  identityFile?: string;
  exitCode?: number;
}

/** `vzsb ssh-config -i INVENTORY STUDENT`: the ~/.ssh/config block and known_hosts line for a student. */
export const sshConfigCommand: CommandModule<object, SshConfigArgs> = {
  command: 'ssh-config <student>',
  describe: "Print a student's ~/.ssh/config block (Host sandbox through the gateway's tunnel) and the host CA line for known_hosts",
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('student', { type: 'string', demandOption: true, describe: 'the student (a name in the gateways\' students list)' })
      .option('inventory', { alias: 'i', type: 'string', demandOption: true, describe: 'the deployed inventory (sandbox-host-ca.pub is beside it)' })
      .option('gateway', { type: 'string', describe: 'which gateway of the inventory (default: the first)' })
      .option('identity-file', { type: 'string', describe: "the student's private key, when ssh does not find it by itself (e.g. ~/.ssh/id_class)" })
      .example('$0 ssh-config -i inventory.yaml alice', "alice's block for ~/.ssh/config and her known_hosts line")
      .epilog(
        'The gateway is reached at its ansible_host and ansible_port unless the gateway has gateway_public_address / gateway_public_port. ' +
          'Exit status: 0; 1 when the inventory, the student or sandbox-host-ca.pub (written by the first deploy) is missing.',
      ) as unknown as Argv<SshConfigArgs>,
  handler: async (argv) => {
    const { studentSshConfigFromInventory } = await import('../../admin/ssh-config.js');
    process.stdout.write(await studentSshConfigFromInventory({ inventory: argv.inventory, student: argv.student, gateway: argv.gateway, identityFile: argv.identityFile }));
    argv.exitCode = 0;
  },
};
