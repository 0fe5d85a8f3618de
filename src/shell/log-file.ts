import { closeSync, openSync, writeSync } from 'node:fs';
import { createLogger, type Level, type Logger } from '../common/log.js';

/**
 * The gateway's JSON-lines log: appended by the session process (the service user), mode
 * 0640, in a directory students cannot enter. When it cannot be opened the lines are
 * dropped rather than shown: they name internal addresses, and the student sees only the
 * short message.
 */
export interface LogFile {
  logger: Logger;
  close(): void;
}

export function openLogFile(path: string, level: Level, base: Record<string, unknown>, secrets: readonly string[] = []): LogFile {
  let fd: number | undefined;
  try {
    fd = openSync(path, 'a', 0o640);
  } catch {
    fd = undefined;
  }
  const logger = createLogger({
    level,
    base,
    secrets,
    write: (line) => {
      if (fd === undefined) return;
      try {
        writeSync(fd, line + '\n');
      } catch {
        // a full disk must not end the student's session
      }
    },
  });
  return {
    logger,
    close: () => {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}
