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
      const result = await run(file!, args, { input: script, env: hostEnv() });
      stats.bytesReceived += Buffer.byteLength(result.stdout) + Buffer.byteLength(result.stderr);
      return result;
    },
    async close() {},
  };
}

/**
 * The environment a local "host" sees: ours without the node_modules/.bin entries that npm and
 * npx put first in PATH (they shadow system tools: @vercel/nft installs an `nft`).
 */
export function hostEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const path = (env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin')
    .split(':')
    .filter((p) => p && !p.includes('node_modules'))
    .join(':');
  return { ...env, PATH: path };
}
