import { copyFile, mkdir, rm } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';

/**
 * ssh2's native crypto binding beside the session bundle, for a run with --native: `npm run
 * build` leaves it out of dist/shell (scripts/build.mjs says why), as the gateway role installs
 * the bundle alone. Returns what undoes it; throws if npm did not build the binding.
 */
export async function placeNativeBinding(root: string): Promise<() => Promise<void>> {
  const binding = join(root, 'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node');
  if (!existsSync(binding)) throw new Error(`--native: ssh2's binding was not built (${binding} is missing)`);
  const dir = join(root, 'dist/shell/crypto/build/Release');
  await mkdir(dir, { recursive: true });
  await copyFile(binding, join(dir, 'sshcrypto.node'));
  return () => rm(join(root, 'dist/shell/crypto'), { recursive: true, force: true });
}
