import yargs, { type Argv, type CommandModule } from 'yargs';
import { VzsbError, errorMessage } from '../common/errors.js';
import { commands } from './commands/index.js';

/**
 * Exit codes (documented in docs/cli.md):
 *   0 success · 1 usage or input error · 2 a host failed · 4 a host was unreachable
 *   (2 and 4 combine as 6) · 3 a daemon or API error
 */
export async function main(argv: readonly string[]): Promise<number> {
  const parser: Argv = yargs([...argv])
    .scriptName('vzsb')
    .usage('$0 <command> [options]\n\nDeploy and run a classroom sandbox of disposable Linux containers.')
    .strict()
    .demandCommand(1, 'Name a command; `vzsb --help` lists them.')
    .recommendCommands()
    .wrap(Math.min(110, process.stdout.columns || 100))
    .help()
    .alias('h', 'help')
    .version(false)
    .exitProcess(false)
    .fail((msg, err) => {
      // Stop at the first problem: yargs would otherwise go on and run the handler.
      throw err ?? new VzsbError('E_USAGE', `${msg}\nRun with --help for usage.`);
    });
  for (const command of commands) parser.command(command as CommandModule);
  try {
    const result = (await parser.parseAsync()) as { exitCode?: number };
    return typeof result.exitCode === 'number' ? result.exitCode : 0;
  } catch (err) {
    if (err instanceof VzsbError) {
      process.stderr.write(`vzsb: ${err.message}\n`);
      if (process.env.VZSB_DEBUG && err.details) process.stderr.write(err.details + '\n');
    } else {
      process.stderr.write(`vzsb: ${errorMessage(err)}\n`);
      if (process.env.VZSB_DEBUG && err instanceof Error) process.stderr.write(`${err.stack}\n`);
    }
    return 1;
  }
}
