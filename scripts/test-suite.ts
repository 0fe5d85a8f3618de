/**
 * The two suites of test files, so that no list of files is kept by hand: heavy, the files
 * test/heavy.ts names (root resources, one at a time under the lock), and unit, every other
 * test/**\/*.test.ts. `npm test` runs both (ava's own file glob).
 *
 *   node --import tsx scripts/test-suite.ts unit [ava options]   run the unit tests (npm run test:unit)
 *   node --import tsx scripts/test-suite.ts unit|heavy --list    print the suite's files
 * The heavy files are run one at a time, each under the lock: flock /tmp/vzsb-heavy.lock npx ava FILE
 */
import { spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join, relative, sep } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { HEAVY } from '../test/heavy.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));

/** Every test file under test/, as a path from the repository root with forward slashes, sorted. */
export function testFiles(root = ROOT): string[] {
  return readdirSync(join(root, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.test.ts') && !f.split(sep).includes('node_modules'))
    .map((f) => relative(root, join(root, 'test', f)).split(sep).join('/'))
    .sort();
}

/** `*` matches within one path segment; everything else literally. */
export function matches(pattern: string, file: string): boolean {
  const re = pattern.split('*').map((part) => part.replace(/[.+?^${}()|[\]\\]/g, '\\$&')).join('[^/]*');
  return new RegExp(`^${re}$`).test(file);
}

export function suites(root = ROOT, heavy: Readonly<Record<string, string>> = HEAVY): { unit: string[]; heavy: string[] } {
  const patterns = Object.keys(heavy);
  const files = testFiles(root);
  return {
    unit: files.filter((f) => !patterns.some((p) => matches(p, f))),
    heavy: files.filter((f) => patterns.some((p) => matches(p, f))),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const [suite, ...rest] = process.argv.slice(2);
  if (suite !== 'unit' && suite !== 'heavy') {
    process.stderr.write('usage: node --import tsx scripts/test-suite.ts unit|heavy [--list | ava options]\n');
    process.exit(2);
  }
  const files = suites()[suite];
  if (rest.includes('--list')) {
    process.stdout.write(files.map((f) => `${f}\n`).join(''));
  } else if (suite === 'heavy') {
    process.stderr.write('heavy tests run one file at a time, each under the lock: flock /tmp/vzsb-heavy.lock npx ava FILE (--list names them)\n');
    process.exit(2);
  } else {
    const ava = spawnSync(join(ROOT, 'node_modules', '.bin', 'ava'), [...files, ...rest], { cwd: ROOT, stdio: 'inherit' });
    process.exit(ava.status ?? 1);
  }
}
