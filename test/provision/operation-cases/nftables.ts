import { createHash } from 'node:crypto';
import type { OperationCase } from './types.js';

const DEST = '/etc/nftables.d/vzsandbox.nft';
const RULESET = `#!/usr/sbin/nft -f
# students may not reach the daemons
table inet vzsandbox
delete table inet vzsandbox
table inet vzsandbox {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "vzsbr0" ip daddr 10.0.0.0/8 drop
  }
}
`;
const FLUSHED = 'flush ruleset\ntable inet filter {\n  chain input { type filter hook input priority 0; policy accept; }\n}\n';
const stat = (content: string, over: Record<string, unknown> = {}) => ({ type: 'file', mode: '0644', owner: 'root', group: 'root', size: Buffer.byteLength(content), sha256: createHash('sha256').update(content).digest('hex'), ...over });
const live = (...tables: string[]) => ({ 'nftables:': { installed: true, tables } });
const TMP = `${DEST}.vzsb-new`;
const APPLY = `if ! /usr/sbin/nft -c -f ${TMP}; then rm -f -- ${TMP}; exit 1; fi\nif ! /usr/sbin/nft -f ${TMP}; then rm -f -- ${TMP}; exit 1; fi\nmv -f -- ${TMP} ${DEST}`;

export const cases: OperationCase[] = [
  {
    name: 'new ruleset: put beside, check, apply, then replace the file',
    op: 'nftables',
    args: { content: RULESET },
    facts: { [`file:${DEST}`]: { type: 'absent' }, ...live() },
    commands: [{ kind: 'shell', script: 'mkdir -p -- /etc/nftables.d' }, { kind: 'put', path: TMP, content: RULESET, mode: '0644', owner: 'root', group: 'root' }, { kind: 'shell', script: APPLY }],
    reason: 'apply inet vzsandbox',
    effects: { 'nftables:': { installed: true, tables: ['inet vzsandbox'] } },
  },
  { name: 'unchanged file and tables live -> nothing', op: 'nftables', args: { content: RULESET }, facts: { [`file:${DEST}`]: stat(RULESET), ...live('inet vzsandbox', 'ip nat') }, commands: [], reason: 'up to date and applied' },
  { name: 'unchanged file but table not live (after a reboot) -> apply the file', op: 'nftables', args: { content: RULESET }, facts: { [`file:${DEST}`]: stat(RULESET), ...live() }, commands: [{ kind: 'shell', script: `/usr/sbin/nft -c -f ${DEST}\n/usr/sbin/nft -f ${DEST}` }], reason: 'live ruleset lacks inet vzsandbox' },
  { name: 'changed ruleset with flush ruleset, other dest and mode', op: 'nftables', args: { content: FLUSHED, dest: '/etc/nftables.conf', mode: '0755' }, facts: { 'file:/etc/nftables.conf': stat('flush ruleset\n', { mode: '0755' }), ...live('inet filter', 'ip nat') }, commands: [{ kind: 'shell', script: 'mkdir -p -- /etc' }, { kind: 'put', path: '/etc/nftables.conf.vzsb-new', content: FLUSHED, mode: '0755', owner: 'root', group: 'root' }, { kind: 'shell', script: 'if ! /usr/sbin/nft -c -f /etc/nftables.conf.vzsb-new; then rm -f -- /etc/nftables.conf.vzsb-new; exit 1; fi\nif ! /usr/sbin/nft -f /etc/nftables.conf.vzsb-new; then rm -f -- /etc/nftables.conf.vzsb-new; exit 1; fi\nmv -f -- /etc/nftables.conf.vzsb-new /etc/nftables.conf' }], effects: { 'nftables:': { installed: true, tables: ['inet filter'] } } },
  { name: 'destroy table counts as replacing', op: 'nftables', args: { content: 'destroy table ip vzsb_nat\ntable ip vzsb_nat {\n}\n' }, facts: { [`file:${DEST}`]: stat('destroy table ip vzsb_nat\ntable ip vzsb_nat {\n}\n'), ...live('ip vzsb_nat') }, commands: [] },
  { name: 'unchanged content, other owner -> chown only', op: 'nftables', args: { content: RULESET, owner: 'vzsb' }, facts: { [`file:${DEST}`]: stat(RULESET), ...live('inet vzsandbox') }, commands: [{ kind: 'shell', script: `chown vzsb ${DEST}` }] },
  { name: 'with diff the old content is read', op: 'nftables', diff: true, args: { content: RULESET }, facts: { [`file:${DEST}`]: stat('flush ruleset\n'), [`content:${DEST}`]: 'flush ruleset\n', ...live() } },
  { name: 'a table that is only added to -> error naming the fix', op: 'nftables', args: { content: 'table inet vzsandbox {\n  chain c { }\n}\n' }, facts: { [`file:${DEST}`]: { type: 'absent' }, ...live() }, error: 'nftables content: table inet vzsandbox is added to, not replaced: start the ruleset with "flush ruleset"' },
  { name: 'flush ruleset after a table -> error', op: 'nftables', args: { content: 'table ip x\ndelete table ip x\ntable ip x {\n}\nflush ruleset\n' }, facts: { [`file:${DEST}`]: { type: 'absent' }, ...live() }, error: 'must come before the first table' },
  { name: 'no table -> error', op: 'nftables', args: { content: '# nothing\n' }, facts: { [`file:${DEST}`]: { type: 'absent' }, ...live() }, error: 'defines no table' },
  { name: 'content or src required', op: 'nftables', args: {}, error: 'content: exactly one of content or src' },
  { name: 'relative dest rejected', op: 'nftables', args: { content: FLUSHED, dest: 'x.nft' }, error: 'dest: .*absolute path' },
];
