// Bundles the CLI (all commands and daemons) into one ES module, dist/vzsb.mjs: one file to
// install on hosts, and a faster start than resolving hundreds of modules. The gateway's
// session process, which starts on every student login, gets its own smaller bundle,
// dist/shell/main.js, with only what a session needs.
import { build } from 'esbuild';
import { copyFileSync, existsSync, mkdirSync, rmSync } from 'node:fs';

const banner = [
  "import { createRequire as __vzsbRequire } from 'node:module';",
  "import { fileURLToPath as __vzsbPath } from 'node:url';",
  "import { dirname as __vzsbDir } from 'node:path';",
  'const require = __vzsbRequire(import.meta.url);',
  'const __filename = __vzsbPath(import.meta.url);',
  'const __dirname = __vzsbDir(__filename);',
].join('\n');

const common = {
  bundle: true,
  minify: true,
  sourcemap: 'linked',
  platform: 'node',
  target: 'node18',
  format: 'esm',
  // ssh2's optional native helpers: it falls back to pure JS when they are absent.
  external: ['cpu-features', '*.node'],
  banner: { js: banner },
  logLevel: 'warning',
};

await Promise.all([
  // for hosts: one file
  build({ ...common, entryPoints: ['src/cli/entry.ts'], outfile: 'dist/vzsb.mjs' }),
  // for this machine (bin/vzsb.js): split, so a command compiles only the code it loads
  build({ ...common, entryPoints: ['src/cli/entry.ts'], outdir: 'dist/cli', splitting: true, chunkNames: 'chunks/[name]-[hash]', sourcemap: false }),
  build({ ...common, entryPoints: ['src/shell/main.ts'], outfile: 'dist/shell/main.js' }),
]);

// ssh2's optional native crypto (built by its install script when npm runs it): next to the CLI
// bundles, where their relative require finds it. It saves about 200 ms per process (the pure-JS
// path compiles a WASM Poly1305 first). It loads only under the Node.js it was built for;
// elsewhere (Debian's Node 18 on deployed hosts) ssh2 falls back to its JS path.
// Not beside the session bundle (dist/shell): the gateway's session agent is one long-lived
// process whose crash locks every student out, and with the binding it died of SIGSEGV in two
// 5,000-login soaks of `npm run bench:soak -- --native` (after about 4,000 logins), while with the
// JS path it served all 5,000; the gateway role never installed the binding anyway.
const binding = 'node_modules/ssh2/lib/protocol/crypto/build/Release/sshcrypto.node';
rmSync('dist/shell/crypto', { recursive: true, force: true });
if (existsSync(binding)) {
  for (const dir of ['dist/crypto/build/Release', 'dist/cli/chunks/crypto/build/Release']) {
    mkdirSync(dir, { recursive: true });
    copyFileSync(binding, `${dir}/sshcrypto.node`);
  }
}
