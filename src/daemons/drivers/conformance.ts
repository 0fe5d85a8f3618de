import { createHash } from 'node:crypto';
import { connect } from 'node:net';
import type { ExecutionContext, TestFn } from 'ava';
import ssh2 from 'ssh2';

const { Client, utils } = ssh2;
type Client = InstanceType<typeof Client>;
import type { ContainerDriver } from './types.js';

/**
 * The contract every driver passes, as one ava suite. A driver's test file calls
 *   runDriverConformance(test, 'lxc', () => new LxcDriver(...), { ids: [...] })
 * The suite creates and destroys only `options.ids` and destroys them all at the end, also
 * on failure. Tests run serially (in order); the last one exercises concurrency itself.
 */
export interface ConformanceOptions {
  /** at least 6 ids the driver accepts, used by no other test file running at the same time */
  ids: readonly string[];
  /**
   * Checks a driver cannot pass here because its runtime cannot run here (the OpenVZ fake).
   * Each value is the reason, put in the skipped test's title.
   */
  skip?: {
    /** shorthand for both sshBanner and sshLogin: no ssh at all at the container's address */
    ssh?: string;
    /** nothing greets with an SSH banner at the container's address once start resolves */
    sshBanner?: string;
    /** no real sshd in the container: served host key, logins with the authorized key, live session counting */
    sshLogin?: string;
    /** no processes run inside the container: exec and reading files back through it */
    exec?: string;
    /** nothing enforces a disk or inode quota here (a fake runtime) */
    quota?: string;
    /**
     * no kernel isolation to check: a fake runtime (no id map, no cgroups), or a mode that
     * gives none on purpose (privileged LXC). Both isolation checks are skipped.
     */
    isolation?: string;
  };
  /**
   * The disk and inode quota the driver was configured with. Every driver must enforce one:
   * without this (or skip.quota) the quota check fails.
   */
  quota?: { diskMiB: number; inodes: number };
  /** how many containers the concurrency check creates and starts at once (default 4) */
  concurrency?: number;
  /** time for any single wait on the container (sshd answering, a session appearing) */
  waitTimeoutMs?: number;
}

export function runDriverConformance(
  test: TestFn,
  name: string,
  factory: () => ContainerDriver | Promise<ContainerDriver>,
  options: ConformanceOptions,
): void {
  if (options.ids.length < 6) throw new Error('runDriverConformance: give at least 6 ids');
  const [a, b, c, d, e, f] = options.ids as [string, string, string, string, string, string];
  const concurrent = options.ids.slice(6, 6 + (options.concurrency ?? 4));
  const waitMs = options.waitTimeoutMs ?? 15_000;
  const bannerSkip = options.skip?.sshBanner ?? options.skip?.ssh;
  const sshSkip = options.skip?.sshLogin ?? options.skip?.ssh;
  const execSkip = options.skip?.exec;
  const isolationSkip = options.skip?.isolation ?? execSkip;
  let driver: ContainerDriver;

  const title = (what: string) => `${name} conformance: ${what}`;
  const needs = (what: string, reason: string | undefined, fn: (t: ExecutionContext) => Promise<void>) => {
    if (reason) test.serial.skip(`${title(what)} [skipped: ${reason}]`, () => {});
    else test.serial(title(what), fn);
  };

  test.serial.before(async () => {
    driver = await factory();
    await Promise.all(options.ids.map((id) => driver.destroy(id))); // leftovers of a killed run
    await driver.prepare();
  });

  test.serial.after.always(async () => {
    if (!driver) return;
    await Promise.all(options.ids.map((id) => driver.destroy(id).catch(() => undefined)));
  });

  test.serial(title('prepare is idempotent and lists nothing new'), async (t) => {
    const before = await ownContainers(driver, options.ids);
    await Promise.all([driver.prepare(), driver.prepare()]);
    await driver.prepare();
    t.deepEqual(await ownContainers(driver, options.ids), before);
    t.deepEqual(before, []);
  });

  test.serial(title('create makes a stopped, listed container with an address'), async (t) => {
    const info = await driver.create(a);
    t.is(info.id, a);
    t.false(info.running);
    t.regex(info.address ?? '', /^\d+\.\d+\.\d+\.\d+$/);
    const listed = (await driver.list()).find((x) => x.id === a);
    t.deepEqual(listed, { id: a, running: false, address: info.address });
  });

  test.serial(title('create of an existing id fails with E_DRIVER_EXISTS'), async (t) => {
    await driver.create(b);
    const err = await t.throwsAsync(driver.create(b));
    t.is((err as { code?: string }).code, 'E_DRIVER_EXISTS');
    t.true((await driver.list()).some((x) => x.id === b), 'the existing container is left alone');
  });

  test.serial(title('operations on a missing container fail with E_DRIVER_NOT_FOUND'), async (t) => {
    for (const op of [() => driver.start(f), () => driver.hostKey(f), () => driver.sessionCount(f)]) {
      const err = await t.throwsAsync(op());
      t.is((err as { code?: string }).code, 'E_DRIVER_NOT_FOUND');
    }
  });

  test.serial(title('start resolves; the container is listed as running'), async (t) => {
    await driver.start(a);
    const listed = (await driver.list()).find((x) => x.id === a);
    t.true(listed?.running);
  });

  needs('sshd accepts TCP as soon as start resolves', bannerSkip, async (t) => {
    const { address } = (await driver.list()).find((x) => x.id === a)!;
    // One attempt, no retry: start() promised readiness.
    t.regex(await banner(address!, 22, 3000), /^SSH-2\.0-/);
  });

  needs('exec returns stdout, stderr, exit code, and passes input', execSkip, async (t) => {
    const r = await driver.exec(a, ['/bin/sh', '-c', 'echo out; echo err >&2; exit 7']);
    t.deepEqual(r, { exitCode: 7, stdout: 'out\n', stderr: 'err\n' });
    const cat = await driver.exec(a, ['cat'], 'line one\nline two\n');
    t.is(cat.exitCode, 0);
    t.is(cat.stdout, 'line one\nline two\n');
    const env = await driver.exec(a, ['/bin/sh', '-c', 'echo "$HOME"; id -u']);
    t.is(env.stdout, '/root\n0\n');
  });

  needs('the disk and inode quota: df shows it, a write past it fails, writes up to it work', options.skip?.quota ?? execSkip, async (t) => {
    const quota = options.quota;
    if (!quota) return t.fail('give options.quota (what the driver was configured with) or skip.quota with the reason');
    await checkQuota(t, (argv) => driver.exec(a, argv), quota);
  });

  needs('isolation: container root is no host id, and each container has a host id range of its own', isolationSkip, async (t) => {
    await driver.start(b);
    const maps = await Promise.all([a, b].map(async (id) => {
      const r = await driver.exec(id, ['/bin/sh', '-c', 'cat /proc/self/uid_map; echo --; cat /proc/self/gid_map']);
      t.is(r.exitCode, 0, r.stderr);
      const [uid, gid] = r.stdout.split('--\n').map(parseIdMap) as [IdRange[], IdRange[]];
      return { id, uid, gid };
    }));
    for (const m of maps) {
      for (const [kind, ranges] of [['uid', m.uid], ['gid', m.gid]] as const) {
        const root = ranges.find((r) => r.inside === 0);
        t.truthy(root, `${m.id}: ${kind} 0 is mapped`);
        t.not(root!.outside, 0, `${m.id}: container root is not host ${kind} 0`);
      }
    }
    const [x, y] = maps as [(typeof maps)[0], (typeof maps)[0]];
    for (const kind of ['uid', 'gid'] as const) {
      for (const r of x[kind]) for (const q of y[kind]) t.false(overlaps(r, q), `${kind} ranges of ${a} and ${b} overlap: ${JSON.stringify([r, q])}`);
    }
    await driver.stop(b);
  });

  needs('isolation: root inside cannot write its own memory or pids limits, through any cgroup mount', isolationSkip, async (t) => {
    const r = await driver.exec(a, ['/bin/sh', '-c', RAISE_LIMITS_SCRIPT]);
    t.notRegex(r.stdout, /^WROTE /m, `a limit file took the write:\n${r.stdout}`);
    t.regex(r.stdout, /^tried \d+$/m, 'the script ran');
  });

  test.serial(title('clones have different host keys whose fingerprints match'), async (t) => {
    const ka = await driver.hostKey(a);
    const kb = await driver.hostKey(b);
    t.not(ka.publicKey, kb.publicKey);
    t.not(ka.fingerprint, kb.fingerprint);
    for (const k of [ka, kb]) {
      t.regex(k.publicKey, /^ssh-ed25519 [A-Za-z0-9+/]+=* ?\S*$/);
      t.is(k.fingerprint, sha256Fingerprint(k.publicKey));
    }
  });

  needs('sshd serves the host key the driver reports', sshSkip, async (t) => {
    const { address } = (await driver.list()).find((x) => x.id === a)!;
    const served = await servedHostKey(address!);
    t.is(served.toString('base64'), (await driver.hostKey(a)).publicKey.split(' ')[1]);
  });

  needs('authorizeKey: the container accepts exactly the last key given', sshSkip && execSkip, async (t) => {
    const first = utils.generateKeyPairSync('ed25519', { comment: 'lease-1' });
    const second = utils.generateKeyPairSync('ed25519', { comment: 'lease-2' });
    await driver.authorizeKey(a, first.public);
    if (sshSkip) {
      // No sshd to ask: the key file as the driver's contract puts it (root's authorized_keys).
      t.is((await driver.exec(a, ['cat', '/root/.ssh/authorized_keys'])).stdout, first.public + '\n');
      await driver.authorizeKey(a, second.public);
      t.is((await driver.exec(a, ['cat', '/root/.ssh/authorized_keys'])).stdout, second.public + '\n');
      return;
    }
    const { address } = (await driver.list()).find((x) => x.id === a)!;
    const hostKey = (await driver.hostKey(a)).publicKey.split(' ')[1]!;
    const one = await sshLogin(address!, first.private, hostKey);
    t.is(await sshExec(one, 'id -u'), '0\n');
    one.end();
    await driver.authorizeKey(a, second.public);
    await t.throwsAsync(sshLogin(address!, first.private, hostKey), { message: /authentication methods failed/ }, 'the previous key is refused');
    const two = await sshLogin(address!, second.private, hostKey);
    t.is(await sshExec(two, 'id -u'), '0\n');
    two.end();
  });

  test.serial(title('authorizeKey rejects what is not one public key line'), async (t) => {
    await t.throwsAsync(driver.authorizeKey(a, 'not a key'), { code: 'E_INVALID' } as never);
    const key = utils.generateKeyPairSync('ed25519').public;
    await t.throwsAsync(driver.authorizeKey(a, `${key}\n${key}`), { code: 'E_INVALID' } as never);
  });

  test.serial(title('sessionCount is 0 when idle and when stopped'), async (t) => {
    t.is(await driver.sessionCount(a), 0);
    t.is(await driver.sessionCount(b), 0);
  });

  needs('sessionCount counts a live ssh login, and drops back to 0 after logout', sshSkip, async (t) => {
    const keys = utils.generateKeyPairSync('ed25519', { comment: 'session-test' });
    await driver.authorizeKey(a, keys.public);
    const { address } = (await driver.list()).find((x) => x.id === a)!;
    const hostKey = (await driver.hostKey(a)).publicKey.split(' ')[1];
    const client = await sshLogin(address!, keys.private, hostKey!);
    try {
      const out = await sshExec(client, 'echo hello from $(hostname)');
      t.is(out, `hello from ${a}\n`);
      const shell = await openShell(client);
      t.is(await eventually(() => driver.sessionCount(a), (n) => n === 1, waitMs), 1);
      shell.end();
    } finally {
      client.end();
    }
    t.is(await eventually(() => driver.sessionCount(a), (n) => n === 0, waitMs), 0);
  });

  test.serial(title('stop twice is fine; the container stays listed, stopped'), async (t) => {
    await driver.stop(a);
    await driver.stop(a);
    t.deepEqual((await driver.list()).find((x) => x.id === a)?.running, false);
    t.is(await driver.sessionCount(a), 0);
  });

  test.serial(title('a stopped container starts again; starting it twice is fine'), async (t) => {
    await driver.start(a);
    await driver.start(a);
    t.true((await driver.list()).find((x) => x.id === a)?.running);
  });

  test.serial(title('destroy removes it; destroying a missing id is fine'), async (t) => {
    await driver.destroy(a); // running
    await driver.destroy(b); // stopped
    await driver.destroy(b);
    await driver.destroy(f);
    const ids = (await driver.list()).map((x) => x.id);
    t.false(ids.includes(a));
    t.false(ids.includes(b));
    // The id is free again: a reset is destroy + create.
    const again = await driver.create(a);
    t.false(again.running);
    await driver.destroy(a);
  });

  test.serial(title(`concurrent create and start of ${concurrent.length + 2} containers`), async (t) => {
    const ids = [c, d, ...concurrent];
    await Promise.all(ids.map(async (id) => {
      await driver.create(id);
      await driver.start(id);
    }));
    const listed = (await driver.list()).filter((x) => ids.includes(x.id));
    t.is(listed.length, ids.length);
    t.true(listed.every((x) => x.running));
    t.is(new Set(listed.map((x) => x.address)).size, ids.length, 'every container has its own address');
    const keys = await Promise.all(ids.map((id) => driver.hostKey(id)));
    t.is(new Set(keys.map((k) => k.publicKey)).size, ids.length, 'every container has its own host key');
    if (!bannerSkip) {
      const banners = await Promise.all(listed.map((x) => banner(x.address!, 22, 3000)));
      t.true(banners.every((x) => x.startsWith('SSH-2.0-')));
    }
    await Promise.all(ids.map((id) => driver.destroy(id)));
    t.deepEqual(await ownContainers(driver, options.ids), []);
  });

  void e; // reserved: keeps the id layout stable for drivers' own tests
}

async function ownContainers(driver: ContainerDriver, ids: readonly string[]): Promise<string[]> {
  return (await driver.list()).map((x) => x.id).filter((id) => ids.includes(id)).sort();
}

/** SHA256 fingerprint computed here from the key blob, independently of the driver's code. */
interface IdRange {
  inside: number;
  outside: number;
  count: number;
}

function parseIdMap(text: string): IdRange[] {
  return text
    .trim()
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => {
      const [inside, outside, count] = l.trim().split(/\s+/).map(Number) as [number, number, number];
      return { inside, outside, count };
    });
}

function overlaps(r: IdRange, q: IdRange): boolean {
  return r.outside < q.outside + q.count && q.outside < r.outside + r.count;
}

/**
 * As root inside: every way to reach a cgroup limit file (the cgroup mount the container has,
 * fresh cgroup v1 mounts of the memory and pids controllers, a fresh cgroup2 mount) and a
 * write of "max" (or -1) into each limit file there. Prints WROTE <file> for a write that
 * succeeded, then "tried N". A driver passes when nothing is written.
 */
const RAISE_LIMITS_SCRIPT = `
n=0
try() { n=$((n+1)); if [ -f "$1" ] && (echo "$2" > "$1") 2>/dev/null; then echo "WROTE $1"; fi; }
scan() {
  for f in pids.max memory.max memory.swap.max memory.limit_in_bytes memory.memsw.limit_in_bytes; do
    case "$f" in *limit_in_bytes) v=-1;; *) v=max;; esac
    try "$1/$f" "$v"
  done
}
scan /sys/fs/cgroup
for c in pids memory; do scan /sys/fs/cgroup/$c; done
d=$(mktemp -d)
for opt in pids memory; do
  if mount -t cgroup -o $opt cgroup "$d" 2>/dev/null; then scan "$d"; umount "$d"; fi
done
if mount -t cgroup2 cgroup2 "$d" 2>/dev/null; then scan "$d"; umount "$d"; fi
rmdir "$d"
echo "tried $n"
`;

export function sha256Fingerprint(publicKeyLine: string): string {
  const blob = Buffer.from(publicKeyLine.split(/\s+/)[1] ?? '', 'base64');
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

export async function eventually<T>(read: () => Promise<T>, ok: (v: T) => boolean, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let delay = 10;
  for (;;) {
    const value = await read();
    if (ok(value) || Date.now() > deadline) return value;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(200, delay * 2);
  }
}

function banner(host: string, port: number, timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no banner from ${host}:${port} within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.once('data', (d) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(d.toString('latin1'));
    });
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
  });
}

function servedHostKey(host: string): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    let key: Buffer | undefined;
    client.on('error', () => (key ? resolve(key) : reject(new Error(`no host key from ${host}`))));
    client.connect({
      host,
      username: 'root',
      readyTimeout: 5000,
      hostVerifier: (k: Buffer) => {
        key = Buffer.from(k);
        return false; // stop after the key exchange: we only wanted the key
      },
    });
  });
}

/** Log in as root with `privateKey`, accepting only `expectedHostKey` (its base64 blob). */
export function sshLogin(host: string, privateKey: string, expectedHostKey: string): Promise<Client> {
  return new Promise((resolve, reject) => {
    const client = new Client();
    client.once('ready', () => resolve(client));
    client.once('error', reject);
    client.connect({
      host,
      username: 'root',
      privateKey,
      readyTimeout: 10_000,
      hostVerifier: (k: Buffer) => k.toString('base64') === expectedHostKey,
    });
  });
}

/** Run a command on an ssh2 connection and collect its stdout (tests of real containers). */
export function sshExec(client: Client, command: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.exec(command, (err, stream) => {
      if (err) return reject(err);
      let out = '';
      stream.on('data', (d: Buffer) => (out += d.toString()));
      stream.stderr.on('data', () => {});
      stream.on('close', () => resolve(out));
    });
  });
}

function openShell(client: Client): Promise<{ end(): void }> {
  return new Promise((resolve, reject) => {
    client.shell({ term: 'dumb' }, (err, stream) => {
      if (err) return reject(err);
      stream.on('data', () => {});
      resolve({ end: () => stream.end('exit\n') });
    });
  });
}

type Exec = (argv: readonly string[]) => Promise<{ exitCode: number; stdout: string; stderr: string }>;

/** `df -P` of / inside: [total, used] in KiB, or inodes with -i. */
async function dfRoot(exec: Exec, inodes: boolean): Promise<[number, number]> {
  const r = await exec(['df', '-P', ...(inodes ? ['-i'] : ['-k']), '/']);
  const fields = r.stdout.trim().split('\n').pop()!.trim().split(/\s+/);
  return [Number(fields[1]), Number(fields[2])];
}

/**
 * The quota as a student meets it: df and df -i inside show it (not the host's disk), a
 * write of more than the quota and more files than the inode quota both fail with ENOSPC
 * or EDQUOT, a write up to most of it works, and deleting gives the space back.
 */
export async function checkQuota(t: ExecutionContext, exec: Exec, quota: { diskMiB: number; inodes: number }): Promise<void> {
  const [blocks] = await dfRoot(exec, false);
  t.true(blocks <= quota.diskMiB * 1024 && blocks >= quota.diskMiB * 1024 * 0.9, `df / shows ${blocks} KiB, the quota is ${quota.diskMiB * 1024} KiB`);
  const [inodes] = await dfRoot(exec, true);
  t.true(inodes <= quota.inodes && inodes >= quota.inodes * 0.9, `df -i / shows ${inodes} inodes, the quota is ${quota.inodes}`);
  const full = /No space left on device|Disk quota exceeded/;
  const past = await exec(['fallocate', '-l', `${quota.diskMiB + 64}M`, '/root/vzsb-past']);
  t.not(past.exitCode, 0, 'a file larger than the quota cannot be made');
  t.regex(past.stderr, full);
  const dd = await exec(['/bin/sh', '-c', `dd if=/dev/zero of=/root/vzsb-fill bs=1M count=${quota.diskMiB + 16} 2>&1; echo "exit $?"`]);
  t.regex(dd.stdout, full, 'writing past the quota ends in ENOSPC/EDQUOT');
  t.notRegex(dd.stdout, /exit 0$/m);
  await exec(['rm', '-f', '/root/vzsb-fill', '/root/vzsb-past']);
  const half = Math.floor(quota.diskMiB / 2);
  const ok = await exec(['/bin/sh', '-c', `dd if=/dev/zero of=/root/vzsb-half bs=1M count=${half} status=none && sync && du -m /root/vzsb-half`]);
  t.is(ok.exitCode, 0, `writing ${half} MiB (half the quota) works: ${ok.stderr}`);
  const [, used] = await dfRoot(exec, false);
  t.true(used >= half * 1024, `df counts what was written (${used} KiB used)`);
  await exec(['rm', '-f', '/root/vzsb-half']);
  const many = await exec(['/bin/sh', '-c', `mkdir -p /root/vzsb-many && cd /root/vzsb-many && seq 1 ${quota.inodes + 100} | xargs touch 2>&1 | tail -n 1`]);
  t.regex(many.stdout, full, `more files than the inode quota cannot be made`);
  await exec(['rm', '-rf', '/root/vzsb-many']);
  const [, usedAfter] = await dfRoot(exec, false);
  t.true(usedAfter < half * 1024, `deleting gives the space back (${usedAfter} KiB used)`);
  const write = await exec(['/bin/sh', '-c', 'echo still > /root/vzsb-after && cat /root/vzsb-after && rm /root/vzsb-after']);
  t.is(write.stdout, 'still\n', 'the container writes again after being full');
}
