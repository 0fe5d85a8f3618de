import { userInfo } from 'node:os';
import { run } from '../../common/exec.js';
import { newStats, shellCommand, type Connection } from './types.js';

/** ansible_connection: local — scripts run on the control machine itself. */
export function connectLocal(host: string): Connection {
  const stats = newStats();
  const user = userInfo().username;
  return {
    host,
    stats,
    async run(script, options) {
      stats.roundTrips++;
      stats.bytesSent += Buffer.byteLength(script);
      const [file, ...args] = shellCommand(user, options).split(' ');
      const result = await run(file!, args, { input: script });
      stats.bytesReceived += Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr);
      return result;
    },
    async close() {},
  };
}
