import type { Argv, CommandModule } from 'yargs';
import type { AdminClient } from '../../admin/client.js';
import { EXIT, runAdmin, withAdminOptions, type AdminArgs } from '../../admin/options.js';
import { renderPools, renderReset } from '../../admin/render.js';

/**
 * `vzsb pools status` and `vzsb pools reset`: the instructor's view of every hypervisor's pool
 * and the reset of all pools, one hypervisor's, or one student's container, through a balancer.
 */
export type ResetTarget = { all: true } | { hypervisor: string } | { user: string };

export async function poolsStatus(client: AdminClient, json: boolean, write: (text: string) => void): Promise<number> {
  const { body } = await client.pools();
  write(json ? JSON.stringify(body, null, 2) + '\n' : renderPools(body));
  return EXIT.ok;
}

/** Exit 0 when every part was done, 2 when any hypervisor failed (all results are printed). */
export async function poolsReset(client: AdminClient, target: ResetTarget, options: { force: boolean; wait: boolean }, json: boolean, write: (text: string) => void): Promise<number> {
  const path = 'all' in target ? '/v1/reset' : 'hypervisor' in target ? `/v1/hypervisors/${encodeURIComponent(target.hypervisor)}/reset` : `/v1/users/${encodeURIComponent(target.user)}/reset`;
  const res = await client.reset(path, options);
  write(json ? JSON.stringify(res.body, null, 2) + '\n' : renderReset(res.body));
  return res.body.ok ? EXIT.ok : EXIT.partial;
}

interface StatusArgs extends AdminArgs {}
interface ResetArgs extends AdminArgs {
  all?: boolean;
  hypervisor?: string;
  user?: string;
  force: boolean;
  wait: boolean;
}

const statusCommand: CommandModule<object, StatusArgs> = {
  command: 'status',
  describe: 'One row per hypervisor: up/down and its containers per state, then the totals',
  builder: (yargs: Argv<object>) =>
    withAdminOptions(yargs)
      .example('$0 pools status', 'balancer and token from $VZSB_BALANCER/$VZSB_ADMIN_TOKEN or admin.yaml')
      .example('$0 pools status -b http://lb1:8760 -b http://lb2:8760 --token-file ~/.vzsb-admin', 'two balancers, tried in order')
      .example('$0 pools status --json', 'the full answer, every container with its user') as unknown as Argv<StatusArgs>,
  handler: (argv) => runAdmin(argv, (client, write) => poolsStatus(client, argv.json ?? false, write)),
};

const resetCommand: CommandModule<object, ResetArgs> = {
  command: 'reset',
  describe: 'Reset containers to clean copies: all pools, one hypervisor\'s, or one student\'s',
  builder: (yargs: Argv<object>) =>
    withAdminOptions(yargs)
      .option('all', { type: 'boolean', describe: 'Every pool on every hypervisor' })
      .option('hypervisor', { alias: 'H', type: 'string', describe: 'Only this hypervisor\'s pool' })
      .option('user', { alias: 'u', type: 'string', describe: 'Only the container this student holds' })
      .option('force', { type: 'boolean', default: false, describe: 'Also containers with students logged in (their sessions end)' })
      .option('wait', { type: 'boolean', default: false, describe: 'Answer when the resets finished, not when they started' })
      .check((argv) => {
        const chosen = [argv.all ? '--all' : '', argv.hypervisor !== undefined ? '--hypervisor' : '', argv.user !== undefined ? '--user' : ''].filter(Boolean);
        if (chosen.length !== 1) throw new Error(`name exactly one of --all, --hypervisor H, --user U${chosen.length ? ` (got ${chosen.join(' and ')})` : ''}`);
        return true;
      })
      .example('$0 pools reset --all', 'reset every container nobody is logged into')
      .example('$0 pools reset --all --force --wait', 'reset everything, sessions too, and wait until done')
      .example('$0 pools reset --hypervisor hyp02', 'one hypervisor\'s pool')
      .example('$0 pools reset --user alice --force', 'give alice a clean container (her session ends)')
      .epilog('Exit status: 0 all done; 1 usage or configuration error; 2 some hypervisor failed (every result is printed); 3 no balancer answered.') as unknown as Argv<ResetArgs>,
  handler: (argv) => {
    const target: ResetTarget = argv.all ? { all: true } : argv.hypervisor !== undefined ? { hypervisor: argv.hypervisor } : { user: argv.user! };
    return runAdmin(argv, (client, write) => poolsReset(client, target, { force: argv.force, wait: argv.wait }, argv.json ?? false, write));
  },
};

export const poolsCommand: CommandModule<object, object> = {
  command: 'pools <action>',
  describe: 'Instructors: status and reset of the container pools, through a balancer',
  builder: (yargs: Argv<object>) =>
    yargs
      .command(statusCommand as CommandModule<object, object>)
      .command(resetCommand as CommandModule<object, object>)
      .demandCommand(1, 'Name an action: status or reset.')
      .example('$0 pools status -i inventory.yaml', 'the pools of a deployed inventory (its balancers and admin token)')
      .example('$0 pools reset --all -i inventory.yaml', 'reset every container nobody is logged into'),
  handler: () => {},
};
