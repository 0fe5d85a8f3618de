import { readFile } from 'node:fs/promises';
import type { Argv, CommandModule } from 'yargs';
import { VzsbError } from '../../common/errors.js';

interface ShellArgs {
  action: 'session' | 'agent' | 'setup';
  session?: boolean;
  config: string;
  balancer?: string[];
  'token-file'?: string;
  'service-user': string;
  'students-group': string;
  'log-file': string;
  exitCode?: number;
}

/**
 * `vzsb shell`: the gateway's login shell. `agent` runs the session agent that serves every
 * login of the gateway (as the service user; the gateway role runs it as a service from
 * dist/shell/main.js, the same code without the CLI's start-up cost); `session` is one login
 * in a process of its own, what a login runs when no agent listens; `setup` prepares this
 * machine as a gateway.
 * Exit statuses of a session: the remote shell's, 128+n after signal n, 255 when no sandbox
 * could be reached (docs/gateway.md).
 */
export const shellCommand: CommandModule<object, ShellArgs> = {
  command: 'shell [action]',
  describe: 'Gateway login shell: run a student session (--session), or set this machine up as a gateway',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('action', { choices: ['session', 'agent', 'setup'] as const, default: 'session' as const, describe: 'session: one login in this process; agent: serve every login (as the service user); setup: prepare the gateway' })
      .option('session', { type: 'boolean', describe: 'Run one student session (needs SUDO_USER, set by sudo)' })
      .option('config', { alias: 'c', type: 'string', default: '/etc/vzsandbox/gateway.yaml', describe: 'Gateway configuration' })
      .option('balancer', { type: 'string', array: true, describe: 'setup: balancer URL (repeat for failover order)' })
      .option('token-file', { type: 'string', describe: 'setup: file holding the lease token (never given on the command line)' })
      .option('service-user', { type: 'string', default: 'vzsb-gateway', describe: 'setup: user that runs sessions and may read the token' })
      .option('students-group', { type: 'string', default: 'vzsb-students', describe: 'setup: group whose members get a sandbox' })
      .option('log-file', { type: 'string', default: '/var/log/vzsandbox/gateway.log', describe: 'setup: JSON-lines log of logins and logouts' })
      .example('sudo -u vzsb-gateway $0 shell agent', 'run the session agent in the foreground (SIGTERM drains it)')
      .example('sudo -u vzsb-gateway $0 shell --session', 'one login without the agent (SUDO_USER names the student)')
      .example('$0 shell setup --balancer http://10.0.0.5:8760 --token-file /root/lease.token', 'make this machine a gateway') as unknown as Argv<ShellArgs>,
  handler: async (argv) => {
    if (argv.action === 'setup') {
      if (!argv.balancer?.length) throw new VzsbError('E_INVALID', 'setup: --balancer: name at least one balancer URL');
      if (!argv['token-file']) throw new VzsbError('E_INVALID', 'setup: --token-file: name the file that holds the lease token');
      const token = (await readFile(argv['token-file'], 'utf8')).trim();
      const { defaultSetupOptions, setupGateway } = await import('../../shell/setup.js');
      const options = defaultSetupOptions({ balancers: argv.balancer, token, logFile: argv['log-file'], logLevel: 'info', sessionsDir: '/run/vzsandbox/gateway' });
      options.serviceUser = argv['service-user'];
      options.studentsGroup = argv['students-group'];
      options.configPath = argv.config;
      if (argv.config !== '/etc/vzsandbox/gateway.yaml') options.sessionCommand.push('--config', argv.config);
      const report = await setupGateway(options);
      for (const line of report.changed) process.stdout.write(`changed: ${line}\n`);
      for (const line of report.ok) process.stdout.write(`ok: ${line}\n`);
      argv.exitCode = 0;
      return;
    }
    const { sessionMain } = await import('../../shell/main.js');
    argv.exitCode = await sessionMain([argv.action === 'agent' ? '--agent' : '--session', '--config', argv.config]);
  },
};
