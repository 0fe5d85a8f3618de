import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from './errors.js';
import { run, type Runner } from './exec.js';

/**
 * A Debian root filesystem made by debootstrap once and cached, so that every base
 * container and lab host on this machine starts from the same pristine tree.
 * The directory returned is read-only by convention: callers copy it or use it as an
 * overlay lower layer.
 */
export interface RootfsSpec {
  suite?: string;
  mirror?: string;
  packages: readonly string[];
  cacheDir?: string;
  /** progress lines for long work */
  progress?: (line: string) => void;
  runner?: Runner;
}

export const DEFAULT_CACHE_DIR = '/var/cache/vzsandbox/rootfs';

export function rootfsKey(suite: string, packages: readonly string[]): string {
  const sorted = [...new Set(packages)].sort();
  return `${suite}-${createHash('sha256').update(sorted.join(',')).digest('hex').slice(0, 12)}`;
}

export async function ensureRootfs(spec: RootfsSpec): Promise<string> {
  const suite = spec.suite ?? 'bookworm';
  const cacheDir = spec.cacheDir ?? DEFAULT_CACHE_DIR;
  const runner = spec.runner ?? run;
  const key = rootfsKey(suite, spec.packages);
  const dir = join(cacheDir, key);
  const done = join(dir, '.vzsb-complete');
  if (existsSync(done)) return dir;
  await mkdir(cacheDir, { recursive: true });
  // flock serializes concurrent test workers and CLI runs that want the same tree.
  const mirror = spec.mirror ?? configuredMirror();
  const tmp = `${dir}.partial`;
  const script = [
    'set -e',
    `if [ -e "${done}" ]; then exit 0; fi`,
    `rm -rf "${tmp}"`,
    `debootstrap --variant=minbase --include=${[...new Set(spec.packages)].sort().join(',')} ${suite} "${tmp}" "${mirror}"`,
    `rm -rf "${dir}"`,
    `mv "${tmp}" "${dir}"`,
    `touch "${done}"`,
  ].join('\n');
  spec.progress?.(`building Debian ${suite} root filesystem with debootstrap (about a minute, once per machine): ${dir}`);
  const result = await runner('flock', [join(cacheDir, `${key}.lock`), 'sh', '-c', script], { timeoutMs: 30 * 60_000 });
  if (result.failed) {
    throw new VzsbError('E_ROOTFS', `debootstrap of ${suite} failed (exit ${result.exitCode})`, {
      details: result.stderr.slice(-4000) + result.stdout.slice(-4000),
    });
  }
  return dir;
}

/** The Debian mirror this machine's apt uses, so debootstrap reaches what apt reaches. */
export function configuredMirror(): string {
  const candidates = ['/etc/apt/sources.list.d/debian.sources', '/etc/apt/sources.list'];
  for (const file of candidates) {
    if (!existsSync(file)) continue;
    const text = readFileSync(file, 'utf8');
    const deb822 = /^URIs:\s*(\S+)/m.exec(text);
    if (deb822 && !deb822[1]!.includes('security')) return deb822[1]!;
    const line = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+\S+/m.exec(text);
    if (line) return line[1]!;
  }
  return 'http://deb.debian.org/debian';
}

