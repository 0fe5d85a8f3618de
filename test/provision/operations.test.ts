import test from 'ava';
import { readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { DEFAULT_OS, FactStore } from '../../src/provision/fact-store.js';
import { operations } from '../../src/provision/operations/index.js';
import { factKey } from '../../src/provision/types.js';
import { parseInput } from '../../src/common/validate.js';
import type { OperationCase } from './operation-cases/types.js';

// Table-driven: every file in operation-cases/ (but types.ts) exports `cases`.
const dir = join(dirname(fileURLToPath(import.meta.url)), 'operation-cases');
const files = readdirSync(dir).filter((f) => f.endsWith('.ts') && f !== 'types.ts');
const tables = await Promise.all(files.map(async (f) => ({ file: f, cases: (await import(join(dir, f))).cases as OperationCase[] })));

for (const { file, cases } of tables) {
  for (const c of cases) {
    test(`${file.replace(/\.ts$/, '')}: ${c.name}`, (t) => {
      const op = operations.get(c.op);
      if (!op) return t.fail(`no operation ${c.op}`);
      let plan;
      try {
        const args = parseInput(op.args, c.args, `task ${c.op}`);
        const store = new FactStore({ ...DEFAULT_OS, ...c.os });
        const requested = op.facts(args, { diff: c.diff ?? false }).map(factKey);
        // What the operation asks for must be exactly what the case gives (no silent extra reads).
        t.deepEqual([...new Set(requested)].sort(), Object.keys(c.facts ?? {}).sort(), 'requested facts');
        for (const [key, value] of Object.entries(c.facts ?? {})) {
          const i = key.indexOf(':');
          store.set({ fact: key.slice(0, i), arg: key.slice(i + 1) }, value);
        }
        plan = op.plan(args, { facts: store, vars: {}, check: false, wantDiff: c.diff ?? false });
      } catch (err) {
        if (c.error) return t.regex((err as Error).message, new RegExp(c.error));
        throw err;
      }
      if (c.error) return t.fail(`expected error /${c.error}/, got a plan: ${plan.reason}`);
      const commands = plan.commands.map((cmd) =>
        cmd.kind === 'put'
          ? { kind: 'put', path: cmd.path, content: cmd.content.toString('utf8'), ...(cmd.mode ? { mode: cmd.mode } : {}), ...(cmd.owner ? { owner: cmd.owner } : {}), ...(cmd.group ? { group: cmd.group } : {}) }
          : { kind: 'shell', script: cmd.script },
      );
      if (c.commands) t.deepEqual(commands, c.commands);
      if (c.reason) t.true(plan.reason.includes(c.reason), `reason "${plan.reason}" should include "${c.reason}"`);
      if (c.effects) {
        const effects = Object.fromEntries((plan.effects ?? []).map(([ref, v]) => [factKey(ref), v]));
        for (const [k, v] of Object.entries(c.effects)) t.deepEqual(effects[k], v, `effect ${k}`);
      }
    });
  }
}
