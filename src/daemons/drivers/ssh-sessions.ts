import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

/**
 * An ssh session process as sshd titles it: "sshd: root@pts/0", "sshd: root@notty",
 * "sshd: alice@pts/1,pts/2" (OpenSSH >= 9.8 names the binary "sshd-session"). The listener
 * ("sshd: /usr/sbin/sshd -D [listener] ...") and pre-auth children ("sshd: root [priv]",
 * "sshd: unknown [preauth]") are not sessions.
 */
const SESSION_TITLE = /^sshd(?:-session)?: [^\s@\[]+@(?:pts\/\d+|notty)/;

export function isSshSessionCmdline(cmdline: string): boolean {
  return SESSION_TITLE.test(cmdline.replace(/\0/g, ' '));
}

/**
 * How many of these host pids are ssh session processes, read from the host's /proc
 * (`procRoot` is injectable for tests). Pids that exit meanwhile are skipped.
 */
export async function countSshSessions(procRoot: string, pids: Iterable<number>): Promise<number> {
  const titles = await Promise.all(
    [...pids].map((pid) => readFile(join(procRoot, String(pid), 'cmdline'), 'latin1').catch(() => '')),
  );
  return titles.filter(isSshSessionCmdline).length;
}
