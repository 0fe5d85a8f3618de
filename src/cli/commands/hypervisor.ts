import { hostname } from 'node:os';
import type { Argv, CommandModule } from 'yargs';
import { daemonExitCode } from '../daemon-exit.js';

interface HypervisorArgs {
  action: 'run' | 'reclaim';
  config: string;
  once?: boolean;
  check?: boolean;
  exitCode?: number;
}

/** Config and usage errors exit 1; a daemon that cannot run (lock held, port taken, driver failure) exits 3. */

/** `vzsb hypervisor`: the hypervisor daemon, and its cron.d backstop `reclaim --once`. */
export const hypervisorCommand: CommandModule<object, HypervisorArgs> = {
  command: 'hypervisor [action]',
  describe: 'Run the hypervisor daemon (warm pool of containers, leases, reclaim), or one reclaim pass',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('action', { choices: ['run', 'reclaim'] as const, default: 'run' as const, describe: 'run: the daemon; reclaim: one reclaim pass (with --once)' })
      .option('config', { alias: 'c', type: 'string', default: '/etc/vzsandbox/hypervisor.yaml', describe: 'Daemon configuration (YAML)' })
      .option('once', { type: 'boolean', describe: 'With reclaim: one pass, then exit (for cron.d)' })
      .option('check', { type: 'boolean', describe: 'Validate the configuration and exit' })
      .check((argv) => {
        if (argv.action === 'reclaim' && !argv.once) throw new Error('reclaim runs one pass only: add --once (the daemon runs it on a schedule itself).');
        return true;
      })
      .example('$0 hypervisor --config /etc/vzsandbox/hypervisor.yaml', 'run the daemon')
      .example('$0 hypervisor reclaim --once --config /etc/vzsandbox/hypervisor.yaml', 'one reclaim pass (asks the daemon when it runs)')
      .example('$0 hypervisor --check -c hypervisor.yaml', 'validate a configuration') as unknown as Argv<HypervisorArgs>,
  handler: async (argv) => {
    // Loaded here, not at the top: every vzsb command starts faster without the daemons' code.
    const [{ createLogger }, { loadHypervisorConfig }, { checkDriverConfig }, { reclaimOnce }, { startHypervisor }] = await Promise.all([
      import('../../common/log.js'),
      import('../../daemons/hypervisor/config.js'),
      import('../../daemons/hypervisor/drivers.js'),
      import('../../daemons/hypervisor/reclaim-once.js'),
      import('../../daemons/hypervisor/serve.js'),
    ]);
    const config = await loadHypervisorConfig(argv.config);
    checkDriverConfig(config.driver, argv.config);
    if (argv.check) {
      process.stdout.write(`${argv.config}: ok (driver ${config.driver.kind}, standby ${config.pool.standby}, max ${config.pool.max})\n`);
      argv.exitCode = 0;
      return;
    }
    const logger = createLogger({ level: config.log.level, base: { daemon: 'hypervisor', hypervisor: hostname() }, secrets: Object.values(config.tokens).flat() });
    argv.exitCode = await daemonExitCode(logger, async () => {
      if (argv.action === 'reclaim') {
        const result = await reclaimOnce(config, { source: argv.config, logger });
        process.stdout.write(JSON.stringify({ via: result.via, ...result.report }) + '\n');
      } else {
        const daemon = await startHypervisor(config, { source: argv.config, logger });
        await daemon.stopped;
      }
    });
  },
};
