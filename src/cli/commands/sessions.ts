import type { Argv, CommandModule } from 'yargs';
import type { AdminClient } from '../../admin/client.js';
import { EXIT, runAdmin, withAdminOptions, type AdminArgs } from '../../admin/options.js';
import { renderSessions } from '../../admin/render.js';

/** `vzsb sessions`: who holds which container on which hypervisor, since when, idle how long. */
export async function listSessions(client: AdminClient, json: boolean, write: (text: string) => void): Promise<number> {
  const { body } = await client.sessions();
  write(json ? JSON.stringify(body, null, 2) + '\n' : renderSessions(body));
  return body.unavailable.length > 0 ? EXIT.partial : EXIT.ok;
}

export const sessionsCommand: CommandModule<object, AdminArgs> = {
  command: 'sessions',
  describe: 'Instructors: every student\'s lease (user, hypervisor, container, since, idle)',
  builder: (yargs: Argv<object>) =>
    withAdminOptions(yargs)
      .example('$0 sessions', 'a table of every lease')
      .example('$0 sessions --json | jq \'.sessions[] | select(.loggedIn)\'', 'who is logged in')
      .epilog('Exit status: 0; 2 when a hypervisor could not be asked (its sessions are missing); 3 no balancer answered.') as unknown as Argv<AdminArgs>,
  handler: (argv) => runAdmin(argv, (client, write) => listSessions(client, argv.json ?? false, write)),
};
