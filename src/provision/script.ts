import { randomBytes } from 'node:crypto';
import { factModules } from './facts/index.js';
import { base64Heredoc, quote } from './shell.js';
import type { ChangedWhen, Command, FactRef } from './types.js';

/**
 * The wire protocol between the runner and a host: two scripts, each sent in one round trip.
 * Records in the output start with "@@<nonce> " on their own line, so nothing a command prints
 * can forge one.
 */
export const PENDING_DIR = '/var/lib/vzsb/pending-handlers';

export function newNonce(): string {
  return `VZSB${randomBytes(8).toString('hex')}`;
}

/** Facts script: the os fact, the pending handlers, then every requested fact. */
export function factsScript(nonce: string, refs: readonly FactRef[]): string {
  const lines = ['exec 2>/dev/null'];
  const emit = (i: number | string, snippet: string) => {
    lines.push(`printf '\\n@@${nonce} ${i}\\n'`, `{ ${snippet}\n} || true`);
  };
  emit('os', factModules.get('os')!.command(''));
  emit('pending', `ls -1A ${PENDING_DIR}`);
  refs.forEach((ref, i) => {
    const mod = factModules.get(ref.fact);
    if (!mod) throw new Error(`unknown fact module ${ref.fact}`);
    emit(i, mod.command(ref.arg));
  });
  lines.push(`printf '\\n@@${nonce} end\\n'`);
  return lines.join('\n') + '\n';
}

/** Splits output into records by key. Output after the last record marker is ignored. */
export function parseRecords(stdout: string, nonce: string): Map<string, string> {
  const records = new Map<string, string>();
  const marker = `\n@@${nonce} `;
  const parts = ('\n' + stdout).split(marker);
  for (const part of parts.slice(1)) {
    const nl = part.indexOf('\n');
    const key = nl < 0 ? part : part.slice(0, nl);
    let body = nl < 0 ? '' : part.slice(nl + 1);
    if (body.endsWith('\n')) body = body.slice(0, -1);
    records.set(key.trim(), body);
  }
  return records;
}

export interface ScriptStep {
  /** Index reported back in the record. */
  id: number;
  commands: Command[];
  changedWhen: ChangedWhen | undefined;
  /** Marker files created when the step changed something (pending handlers). */
  notify: string[];
  ignoreErrors: boolean;
  /** Run only if this pending-handler marker exists; removed after success. */
  guard?: string;
}

export interface ApplyRecord {
  id: number;
  exitCode: number;
  changed: boolean;
  stdout: string;
  stderr: string;
}

export function commandText(cmd: Command): string {
  if (cmd.kind === 'shell') return cmd.script;
  const dir = cmd.path.replace(/\/[^/]*$/, '') || '/';
  const p = quote(cmd.path);
  const lines = [`vzsb_tmp=$(mktemp ${quote(dir + '/.vzsb.XXXXXX')})`, base64Heredoc(`base64 -d > "$vzsb_tmp"`, cmd.content)];
  if (cmd.mode) lines.push(`chmod ${cmd.mode} "$vzsb_tmp"`);
  if (cmd.owner || cmd.group) lines.push(`chown ${quote(`${cmd.owner ?? ''}${cmd.group ? `:${cmd.group}` : ''}`)} "$vzsb_tmp"`);
  if (cmd.validate) {
    // the check sees the file as it will be (mode and owner included); a refusal keeps the old one
    const check = cmd.validate.split('%s').join('"$vzsb_tmp"');
    lines.push(`if ! ${check}; then rm -f "$vzsb_tmp"; echo ${quote(`validate refused the new ${cmd.path}: ${cmd.validate}`)} >&2; exit 1; fi`);
  }
  lines.push(`mv -f "$vzsb_tmp" ${p}`);
  return lines.join('\n');
}

/** What a person reads in a failure or a --json event: put bodies are summarized, masks applied. */
export function displayCommand(cmd: Command): string {
  if (cmd.kind === 'put') return `put ${cmd.path} (${cmd.content.length} bytes${cmd.mode ? `, mode ${cmd.mode}` : ''}${cmd.validate ? `, validated by ${cmd.validate}` : ''})`;
  let text = cmd.script;
  for (const secret of cmd.mask ?? []) text = text.split(secret).join('********');
  return text;
}

function changedTest(cw: ChangedWhen | undefined): string {
  if (!cw) return 'vzsb_changed=1';
  if ('always' in cw) return `vzsb_changed=${cw.always ? 1 : 0}`;
  if ('stdoutContains' in cw) return `if grep -qF -- ${quote(cw.stdoutContains)} "$vzsb_t/o"; then vzsb_changed=1; else vzsb_changed=0; fi`;
  return `if grep -qF -- ${quote(cw.stdoutNotContains)} "$vzsb_t/o"; then vzsb_changed=0; else vzsb_changed=1; fi`;
}

/** The apply script: every step in order; stops at the first failure not ignored. */
export function applyScript(nonce: string, steps: readonly ScriptStep[]): string {
  const out = [
    'set -u',
    'umask 022',
    "vzsb_t=$(mktemp -d /tmp/vzsb.XXXXXX) || { echo 'cannot create a temporary directory' >&2; exit 90; }",
    'trap \'rm -rf "$vzsb_t"\' EXIT',
    `vzsb_rec() { printf '\\n@@${nonce} %s %s %s ' "$1" "$2" "$3"; base64 -w0 < "$vzsb_t/o"; printf ' '; base64 -w0 < "$vzsb_t/e"; printf '\\n'; }`,
  ];
  for (const step of steps) {
    const body = step.commands.map(commandText).join('\n');
    const run = [
      `( set -e`,
      body,
      `) > "$vzsb_t/o" 2> "$vzsb_t/e" < /dev/null; vzsb_rc=$?`,
      changedTest(step.changedWhen),
    ];
    if (step.notify.length) {
      run.push(`if [ $vzsb_rc -eq 0 ] && [ $vzsb_changed = 1 ]; then mkdir -p ${PENDING_DIR} && touch ${step.notify.map((n) => quote(`${PENDING_DIR}/${n}`)).join(' ')}; fi`);
    }
    if (step.guard) run.push(`if [ $vzsb_rc -eq 0 ]; then rm -f ${quote(`${PENDING_DIR}/${step.guard}`)}; fi`);
    run.push(`vzsb_rec ${step.id} $vzsb_rc $vzsb_changed`);
    if (!step.ignoreErrors) run.push('[ $vzsb_rc -eq 0 ] || exit 0');
    if (step.guard) {
      out.push(`if [ -e ${quote(`${PENDING_DIR}/${step.guard}`)} ]; then`, ...run, 'fi');
    } else {
      out.push(...run);
    }
  }
  out.push(`printf '\\n@@${nonce} end\\n'`);
  return out.join('\n') + '\n';
}

export function parseApplyRecords(stdout: string, nonce: string): { records: ApplyRecord[]; complete: boolean } {
  const records: ApplyRecord[] = [];
  let complete = false;
  for (const line of stdout.split('\n')) {
    if (!line.startsWith(`@@${nonce} `)) continue;
    const fields = line.slice(nonce.length + 3).split(' ');
    if (fields[0] === 'end') {
      complete = true;
      continue;
    }
    records.push({
      id: Number(fields[0]),
      exitCode: Number(fields[1]),
      changed: fields[2] === '1',
      stdout: Buffer.from(fields[3] ?? '', 'base64').toString('utf8'),
      stderr: Buffer.from(fields[4] ?? '', 'base64').toString('utf8'),
    });
  }
  return { records, complete };
}
