import type { Argv, CommandModule } from 'yargs';
import type { Place } from '../../doctor/checks.js';

interface DoctorArgs {
  role?: string[];
  hosts?: number;
  lxcConfigDir?: string;
  proc?: string;
  sys?: string;
  dev?: string;
  cgroup?: string;
  binDir?: string[];
  json?: boolean;
  exitCode?: number;
}

const out = (s: string) => process.stdout.write(s + '\n');

/**
 * `vzsb doctor`: what this machine must have for the lab, the tests and the drivers (kernel
 * features, cgroup layout, limits, packages), each missing piece with the package or setting
 * that provides it. Exit 0 when every check passes, 1 otherwise.
 */
export const doctorCommand: CommandModule<object, DoctorArgs> = {
  command: 'doctor',
  describe: 'Check that this machine has what vzsandbox needs, and name what provides each missing piece',
  builder: (yargs: Argv<object>) =>
    (yargs as Argv<DoctorArgs>)
      .option('role', { type: 'string', array: true, choices: ['hypervisor', 'balancer', 'gateway'], describe: "Check this machine as a role's host instead (the play's pre-flight)" })
      .option('hosts', { alias: 'n', type: 'number', describe: 'Lab size the limits must allow (default 4)' })
      .option('lxc-config-dir', { type: 'string', describe: 'Where the LXC config snippets are (default /usr/share/lxc/config)' })
      .option('proc', { type: 'string', describe: 'procfs root (default /proc)' })
      .option('sys', { type: 'string', describe: 'sysfs root (default /sys)' })
      .option('dev', { type: 'string', describe: 'device root (default /dev)' })
      .option('cgroup', { type: 'string', describe: 'cgroup root (default /sys/fs/cgroup)' })
      .option('bin-dir', { type: 'string', array: true, describe: 'Where programs are looked for (default the system bin directories)' })
      .option('json', { type: 'boolean', describe: 'One JSON object per check' })
      .example('$0 doctor', 'this machine, for the lab and the tests')
      .example('$0 doctor --hosts 50', 'also: limits for a lab of 50 hosts')
      .example('$0 doctor --role hypervisor', "what a hypervisor's pre-flight checks"),
  handler: async (argv) => {
    const { runChecks } = await import('../../doctor/run.js');
    const results = await runChecks({
      places: (argv.role?.length ? argv.role : ['control']) as Place[],
      labHosts: argv.hosts,
      roots: { lxcConfigDir: argv.lxcConfigDir, proc: argv.proc, sys: argv.sys, dev: argv.dev, cgroup: argv.cgroup, binDirs: argv.binDir },
    });
    const width = Math.max(...results.map((r) => r.check.id.length));
    for (const r of results) {
      if (argv.json) out(JSON.stringify({ id: r.check.id, ok: r.ok, title: r.check.title, detail: r.detail, ...(r.ok ? {} : { fix: r.check.fix }) }));
      else {
        out(`${r.ok ? 'ok  ' : 'FAIL'}  ${r.check.id.padEnd(width)}  ${r.check.title}: ${r.detail}`);
        if (!r.ok) out(`      ${''.padEnd(width)}  fix: ${r.check.fix}`);
      }
    }
    const failed = results.filter((r) => !r.ok).length;
    if (!argv.json) out(failed ? `${failed} of ${results.length} checks failed` : `all ${results.length} checks passed`);
    argv.exitCode = failed ? 1 : 0;
  },
};
