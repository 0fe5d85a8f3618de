import test from 'ava';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse as parseYaml } from 'yaml';
import { run } from '../../src/common/exec.js';
import { createTemplating } from '../../src/provision/templating.js';

// The gateway's sshd fragment as deployed, checked by this machine's sshd (Debian 12's 9.2,
// as on the gateways): every option it sets is one this version accepts.
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

async function rendered(extra: Record<string, unknown> = {}): Promise<string> {
  const plays = parseYaml(await readFile(join(ROOT, 'playbooks', 'gateway.yaml'), 'utf8')) as { defaults: Record<string, unknown> }[];
  const text = await readFile(join(ROOT, 'templates', 'gateway', 'sshd-students.conf.hbs'), 'utf8');
  return createTemplating().render(text, { ...plays[0]!.defaults, ...extra }, 'sshd-students.conf.hbs');
}

async function sshdCheck(config: string): Promise<{ exitCode: number; stderr: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'vzsb-sshd-'));
  try {
    await writeFile(join(dir, 'sshd_config'), config);
    return await run('/usr/sbin/sshd', ['-t', '-f', join(dir, 'sshd_config')]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

test('the students\' sshd settings pass sshd -t: per-source limits, no motd, no last login, no Debian banner', async (t) => {
  const config = await rendered();
  for (const line of ['PerSourceMaxStartups 60', 'PerSourceNetBlockSize 32:128', 'PrintMotd no', 'PrintLastLog no', 'DebianBanner no', 'ClientAliveInterval 10', 'ClientAliveCountMax 2']) {
    t.true(config.split('\n').some((l) => l.trim() === line), line);
  }
  t.false(config.includes('PerSourcePenalties'), 'not on OpenSSH before 9.8');
  const checked = await sshdCheck(config);
  t.is(checked.exitCode, 0, checked.stderr);
});

test('PerSourcePenalties only when set (OpenSSH >= 9.8): this sshd refuses it, as the deploy\'s validation would', async (t) => {
  const version = (await run('/usr/sbin/sshd', ['-V'])).stderr;
  const config = await rendered({ sshd_per_source_penalties: 'authfail:1 noauth:1 max:30' });
  t.true(config.includes('PerSourcePenalties authfail:1 noauth:1 max:30'));
  const checked = await sshdCheck(config);
  const [, major, minor] = /OpenSSH_(\d+)\.(\d+)/.exec(version) ?? [];
  if (Number(major) * 100 + Number(minor) >= 908) t.is(checked.exitCode, 0, checked.stderr);
  else t.regex(checked.stderr, /Bad configuration option: PerSourcePenalties/);
});
