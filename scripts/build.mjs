// Bundles the CLI (all commands, daemons and the login shell) into one ES module, dist/vzsb.mjs:
// one file to install on hosts, and a faster start than resolving hundreds of modules (the
// gateway shell starts on every student login).
import { build } from 'esbuild';

const banner = [
  "import { createRequire as __vzsbRequire } from 'node:module';",
  "import { fileURLToPath as __vzsbPath } from 'node:url';",
  "import { dirname as __vzsbDir } from 'node:path';",
  'const require = __vzsbRequire(import.meta.url);',
  'const __filename = __vzsbPath(import.meta.url);',
  'const __dirname = __vzsbDir(__filename);',
].join('\n');

await build({
  entryPoints: ['src/cli/entry.ts'],
  outfile: 'dist/vzsb.mjs',
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
});
