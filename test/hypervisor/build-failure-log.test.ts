/**
 * A container build that fails in the LXC driver leaves in the hypervisor's log what an operator
 * needs to fix it: lxc-copy's stderr, the cause (a program that cannot start) and the stacks.
 * The driver's own code runs; only its command runner is replaced, since cloning needs root and
 * a base container (test/hypervisor/faults-lxc.test.ts breaks builds for real, under the lock).
 */
import test from 'ava';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, type Runner } from '../../src/common/exec.js';
import { LxcDriver } from '../../src/daemons/drivers/lxc.js';
import { lxcDriverConfigSchema } from '../../src/daemons/drivers/lxc-config.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';
import { startTestHypervisor } from '../helpers/daemons.js';

const PREFIX = 'bf-';
const STDERR = [
  'lxc-copy: bf-0001: lxccontainer.c: do_lxcapi_clone: 3755 No space left on device - Failed to create directory "/var/lib/lxc/bf-0001"',
  'lxc-copy: bf-0001: tools/lxc_copy.c: do_clone: 429 Failed to clone container "vzsb-base"',
  '',
].join('\n');

/** The in-memory driver, except that its first create is the LXC driver's, with `runner` for lxc-*. */
class FirstBuildByLxc extends MemoryDriver {
  private lxc: LxcDriver | undefined;

  constructor(lxc: LxcDriver) {
    super({ prefix: PREFIX });
    this.lxc = lxc;
  }

  override async create(id: string) {
    const lxc = this.lxc;
    this.lxc = undefined;
    return lxc ? lxc.create(id) : super.create(id);
  }
}

async function lxcWith(t: { teardown(fn: () => Promise<void>): void }, runner: Runner): Promise<LxcDriver> {
  const lxcPath = await mkdtemp(join(tmpdir(), 'vzsb-lxcpath-'));
  t.teardown(() => rm(lxcPath, { recursive: true, force: true }));
  // A prepared base, as far as create looks: its directory and hash file.
  await mkdir(join(lxcPath, 'vzsb-base'));
  await writeFile(join(lxcPath, 'vzsb-base', 'vzsb-base.hash'), 'test\n');
  const config = lxcDriverConfigSchema.parse({ prefix: PREFIX, lxcPath, bridge: 'vzsbt-none', subnet: '10.231.0.0/24', gateway: '10.231.0.1', firstAddress: '10.231.0.10', lastAddress: '10.231.0.50' });
  return new LxcDriver({ config, runner, cgroupVersion: 2 });
}

test("a failed clone's stderr, code and stack reach the hypervisor's log", async (t) => {
  const calls: string[] = [];
  const lxc = await lxcWith(t, async (file, args) => {
    calls.push(file);
    return { command: [file, ...args].join(' '), exitCode: 1, signal: null, stdout: '', stderr: STDERR, durationMs: 5, timedOut: false, failed: true };
  });
  const h = await startTestHypervisor(t, { name: 'bf', prefix: PREFIX, standby: 1, max: 1, driver: new FirstBuildByLxc(lxc) });
  const broken = await h.log.waitFor('container.broken');
  t.deepEqual(calls, ['lxc-copy']);
  const error = broken.error as Record<string, string>;
  t.like(error, { type: 'VzsbError', code: 'E_DRIVER_RUNTIME' });
  t.true(error.details!.includes(STDERR), `the whole stderr is in the details: ${JSON.stringify(error)}`);
  t.true(error.details!.startsWith('lxc-copy -P '), 'with the command');
  t.regex(error.stack!, /\n\s+at .*lxc\.ts/, 'the stack shows where the driver threw');
  t.like(broken, { container: 'bf-0001', level: 'error', hypervisor: 'bf' });
});

test('when lxc-copy cannot even start, the log has the cause chain down to the errno', async (t) => {
  const missing = join(tmpdir(), 'vzsb-no-such-dir', 'lxc-copy');
  const lxc = await lxcWith(t, (file, args, options) => run(file === 'lxc-copy' ? missing : file, args, options));
  const h = await startTestHypervisor(t, { name: 'bf', prefix: PREFIX, standby: 1, max: 1, driver: new FirstBuildByLxc(lxc) });
  const broken = await h.log.waitFor('container.broken');
  const error = broken.error as { code: string; message: string; stack: string; cause: Record<string, string> };
  t.is(error.code, 'E_SPAWN');
  t.true(error.message.includes(missing));
  t.like(error.cause, { code: 'ENOENT', syscall: `spawn ${missing}`, path: missing });
  t.regex(error.cause.stack!, /ENOENT/);
});
