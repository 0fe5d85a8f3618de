import type { Argv } from 'yargs';
import { isConfigurationError } from '../common/error-catalog.js';
import { VzsbError } from '../common/errors.js';
import type { AdminClient } from './client.js';
import type { AdminFlags } from './config.js';

/**
 * The options every instructor command shares, and the client they lead to. `--token` exists
 * only to refuse it with a reason: a token in argv is visible to every user through `ps`.
 */
export interface AdminArgs {
  balancer?: string[];
  tokenFile?: string;
  timeout?: number;
  inventory?: string;
  token?: unknown;
  json?: boolean;
  exitCode?: number;
}

export function withAdminOptions<T>(yargs: Argv<T>): Argv<T & AdminArgs> {
  return yargs
    .option('balancer', { alias: 'b', type: 'string', array: true, describe: 'Balancer URL; repeat (or separate with commas) to try several in order. Default: $VZSB_BALANCER, then the admin.yaml' })
    .option('token-file', { type: 'string', describe: 'File whose first line is the admin token. Default: $VZSB_ADMIN_TOKEN, then the admin.yaml' })
    .option('inventory', { alias: 'i', type: 'string', describe: 'A deployed inventory: its balancers, and the admin token from the vzsb-secrets.yaml beside it' })
    .option('timeout', { type: 'number', describe: 'Seconds to wait for each balancer (default 30)' })
    .option('json', { type: 'boolean', default: false, describe: 'Print the balancer\'s JSON answer' })
    .option('token', { type: 'string', hidden: true })
    .check((argv) => {
      if (argv.token !== undefined) {
        throw new Error('--token is not accepted: a token on the command line shows in `ps` to every user. Use --token-file FILE or the VZSB_ADMIN_TOKEN environment variable.');
      }
      if (argv.timeout !== undefined && !(argv.timeout > 0)) throw new Error('--timeout: expected a number of seconds above 0');
      return true;
    }) as unknown as Argv<T & AdminArgs>;
}

export async function adminClientFrom(argv: AdminFlags): Promise<AdminClient> {
  // loaded on use: the option builder above is on every vzsb start (yargs builds all commands)
  const [{ AdminClient }, { resolveAdminTarget }] = await Promise.all([import('./client.js'), import('./config.js')]);
  const target = await resolveAdminTarget({ balancer: argv.balancer, tokenFile: argv.tokenFile, timeout: argv.timeout, inventory: argv.inventory });
  return new AdminClient(target);
}

/** Exit codes of the instructor commands (docs/instructors.md). */
export const EXIT = { ok: 0, usage: 1, partial: 2, api: 3 } as const;

/**
 * Run an instructor command's body: configuration errors propagate (exit 1, printed by the
 * entry); a balancer that cannot be reached or refuses is printed here and exits 3.
 */
export async function runAdmin(argv: AdminArgs, body: (client: AdminClient, write: (text: string) => void) => Promise<number>): Promise<void> {
  const client = await adminClientFrom(argv);
  try {
    argv.exitCode = await body(client, (text) => process.stdout.write(text));
  } catch (err) {
    if (err instanceof VzsbError && isConfigurationError(err.code)) throw err;
    process.stderr.write(`vzsb: ${err instanceof Error ? err.message : String(err)}\n`);
    argv.exitCode = EXIT.api;
  }
}
