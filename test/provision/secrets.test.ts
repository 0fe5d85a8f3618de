import test from 'ava';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse } from 'yaml';
import { deploy } from '../../src/provision/deploy.js';
import { humanReporter } from '../../src/provision/reporters/human.js';

// Runs on this machine through the local connection, in a temp dir.
test('secrets are made once beside the inventory (0600), reused, and never printed', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-secret-'));
  writeFileSync(join(dir, 'inventory.yaml'), 'all:\n  hosts:\n    localhost:\n      ansible_connection: local\n');
  writeFileSync(
    join(dir, 'pb.yaml'),
    `- hosts: all
  tasks:
    - copy: { dest: ${dir}/conf.yaml, content: "token: {{secret \\"api_token\\"}}\\n" }
    - command: "sh -c 'echo {{secret \\"api_token\\"}} >&2; exit 1'"
`,
  );
  const run = async () => {
    let out = '';
    const result = await deploy({
      inventory: join(dir, 'inventory.yaml'),
      playbook: join(dir, 'pb.yaml'),
      diff: true,
      reporter: humanReporter({ write: (s) => void (out += s), verbose: true, diff: true, stats: false, color: false }),
    });
    return { out, result };
  };
  const first = await run();
  const secretsFile = join(dir, 'vzsb-secrets.yaml');
  const token = parse(readFileSync(secretsFile, 'utf8')).api_token as string;
  t.regex(token, /^[A-Za-z0-9_-]{32}$/);
  t.is(statSync(secretsFile).mode & 0o777, 0o600);
  t.is(readFileSync(join(dir, 'conf.yaml'), 'utf8'), `token: ${token}\n`);
  t.is(first.result.exitCode, 2, 'the second task fails on purpose');
  t.false(first.out.includes(token), 'the token is not in the diff, the command or its stderr');
  t.regex(first.out, /\+token: \*\*\*\*\*\*\*\*/);
  const second = await run();
  t.is(parse(readFileSync(secretsFile, 'utf8')).api_token, token, 'reused');
  t.false(second.out.includes(token));
  t.notRegex(second.out, /changed\s+copy/);
});
