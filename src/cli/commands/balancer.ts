import type { Argv, CommandModule } from 'yargs';
import { daemonExitCode } from '../daemon-exit.js';

interface BalancerArgs {
  config: string;
  check?: boolean;
  exitCode?: number;
}

/** `vzsb balancer`: the balancer daemon. Config errors exit 1; a daemon that cannot run (port taken) exits 3. */
export const balancerCommand: CommandModule<object, BalancerArgs> = {
  command: 'balancer',
  describe: 'Run the balancer daemon (places leases on hypervisors, fails over, fans out status and reset)',
  builder: (yargs: Argv<object>) =>
    yargs
      .option('config', { alias: 'c', type: 'string', default: '/etc/vzsandbox/balancer.yaml', describe: 'Daemon configuration (YAML)' })
      .option('check', { type: 'boolean', describe: 'Validate the configuration (and read token files) and exit' })
      .example('$0 balancer --config /etc/vzsandbox/balancer.yaml', 'run the daemon')
      .example('$0 balancer --check -c balancer.yaml', 'validate a configuration') as unknown as Argv<BalancerArgs>,
  handler: async (argv) => {
    const [{ createLogger }, { loadBalancerConfig }, { startBalancer }] = await Promise.all([
      import('../../common/log.js'),
      import('../../daemons/balancer/config.js'),
      import('../../daemons/balancer/serve.js'),
    ]);
    const config = await loadBalancerConfig(argv.config);
    if (argv.check) {
      process.stdout.write(`${argv.config}: ok (${config.hypervisors.length} hypervisor(s): ${config.hypervisors.map((h) => h.name).join(', ')})\n`);
      argv.exitCode = 0;
      return;
    }
    const secrets = [...Object.values(config.tokens).flat(), ...config.hypervisors.map((h) => h.token)];
    const logger = createLogger({ level: config.log.level, base: { daemon: 'balancer' }, secrets });
    argv.exitCode = await daemonExitCode(logger, async () => {
      const daemon = await startBalancer(config, { logger });
      await daemon.stopped;
    });
  },
};
