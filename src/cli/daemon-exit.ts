import { isConfigurationError } from '../common/error-catalog.js';
import { VzsbError } from '../common/errors.js';
import type { Logger } from '../common/log.js';

/**
 * Run a daemon's work to its end and turn the outcome into the exit code the daemons
 * document: 0 done, a configuration error thrown on (the entry prints it, exit 1), anything
 * else logged and printed with exit 3 (the daemon could not run: port taken, lock held, ...).
 */
export async function daemonExitCode(logger: Logger, work: () => Promise<void>): Promise<number> {
  try {
    await work();
    return 0;
  } catch (err) {
    if (err instanceof VzsbError && isConfigurationError(err.code)) throw err;
    logger.error('daemon.failed', { error: err });
    process.stderr.write(`vzsb: ${err instanceof Error ? err.message : String(err)}\n`);
    return 3;
  }
}
