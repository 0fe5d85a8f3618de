import type { Argv, CommandModule } from 'yargs';
import { join } from 'node:path';
import { VzsbError } from '../../common/errors.js';
import { packageRoot } from '../../common/paths.js';
import { parseExtraVars } from '../extra-vars.js';

interface DeployArgs {
  inventory: string;
  playbook?: string;
  limit?: string;
  tags?: string[];
  'skip-tags'?: string[];
  check?: boolean;
  diff?: boolean;
  forks: number;
  'extra-vars'?: string[];
  json?: boolean;
  stats?: boolean;
  verbose?: boolean;
  'accept-new-host-keys'?: boolean;
  'known-hosts'?: string[];
  exitCode?: number;
}

const csv = (v: string[] | undefined) => (v ?? []).flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean);

export const deployCommand: CommandModule<object, DeployArgs> = {
  command: 'deploy <inventory> [playbook]',
  describe: 'Apply playbooks to the hosts of an inventory over SSH (like ansible-playbook)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('inventory', { type: 'string', demandOption: true, describe: 'Ansible-style YAML inventory' })
      .positional('playbook', { type: 'string', describe: `Playbook to apply (default: ${join(packageRoot(), 'playbooks', 'site.yaml')}, every role)` })
      .option('limit', { alias: 'l', type: 'string', describe: 'Only hosts matching this pattern (host, group, glob, ~regex, !exclude, &intersect)' })
      .option('tags', { alias: 't', type: 'string', array: true, describe: 'Only tasks with these tags (comma-separated or repeated)' })
      .option('skip-tags', { type: 'string', array: true, describe: 'Skip tasks with these tags' })
      .option('check', { alias: 'C', type: 'boolean', describe: 'Change nothing; report what would change' })
      .option('diff', { alias: 'D', type: 'boolean', describe: 'Show the changes to files' })
      .option('forks', { alias: 'f', type: 'number', default: 10, describe: 'Hosts worked on at once' })
      .option('extra-vars', { alias: 'e', type: 'string', array: true, describe: 'key=value, JSON/YAML mapping, or @file: highest precedence' })
      .option('json', { type: 'boolean', describe: 'One JSON event per line instead of text' })
      .option('stats', { type: 'boolean', describe: 'Round trips, channels and bytes per host in the recap' })
      .option('verbose', { alias: 'v', type: 'boolean', describe: 'Also list tasks that were ok or skipped' })
      .option('accept-new-host-keys', { type: 'boolean', describe: 'Record keys of hosts not yet in known_hosts (a changed key is still refused)' })
      .option('known-hosts', { type: 'string', array: true, describe: 'Extra known_hosts file(s) checked before ~/.ssh/known_hosts' })
      .example('$0 deploy inventory.yaml', 'set up every host of the inventory for its role')
      .example('$0 deploy inventory.yaml --check --diff', 'show what would change, and how, without changing anything')
      .example("$0 deploy inventory.yaml --limit 'hypervisors:!hyp03' --tags firewall", 'only the firewall, on all hypervisors but hyp03')
      .example('$0 deploy inventory.yaml playbooks/gateway.yaml -e shell_banner="Lab 3"', 'one role, with a variable set')
      .epilogue('Exit codes: 0 all hosts ok; 1 bad input (inventory, playbook, options); 2 a host failed; 4 a host was unreachable; 6 both.') as unknown as Argv<DeployArgs>,
  handler: async (argv) => {
    if (!Number.isInteger(argv.forks) || argv.forks < 1) throw new VzsbError('E_USAGE', `--forks: expected a whole number >= 1, got ${argv.forks}`);
    const [{ deploy }, { humanReporter }, { jsonReporter }] = await Promise.all([
      import('../../provision/deploy.js'),
      import('../../provision/reporters/human.js'),
      import('../../provision/reporters/json.js'),
    ]);
    const write = (s: string) => process.stdout.write(s);
    const reporter = argv.json
      ? jsonReporter(write)
      : humanReporter({ write, verbose: !!argv.verbose, diff: !!argv.diff, stats: !!argv.stats, color: !!process.stdout.isTTY && !process.env.NO_COLOR });
    const result = await deploy({
      inventory: argv.inventory,
      ...(argv.playbook ? { playbook: argv.playbook } : {}),
      ...(argv.limit ? { limit: argv.limit } : {}),
      tags: csv(argv.tags),
      skipTags: csv(argv['skip-tags']),
      check: !!argv.check,
      diff: !!argv.diff,
      forks: argv.forks,
      extraVars: await parseExtraVars(argv['extra-vars'] ?? []),
      ssh: { acceptNewHostKeys: !!argv['accept-new-host-keys'], ...(argv['known-hosts'] ? { knownHostsFiles: argv['known-hosts'] } : {}) },
      reporter,
      warn: (message) => process.stderr.write(`vzsb: warning: ${message}\n`),
    });
    argv.exitCode = result.exitCode;
  },
};
