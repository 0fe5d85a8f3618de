import type { OperationCase } from './types.js';

const installed = (version: string) => ({ installed: true, version });
const missing = { installed: false, version: null };
const APT_INSTALL = 'DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends';
const APT_REFRESH = 'apt-get update -q\nmkdir -p /var/lib/apt/periodic && touch /var/lib/apt/periodic/update-success-stamp';

export const cases: OperationCase[] = [
  { name: 'installed -> nothing', op: 'package', args: { name: 'nftables' }, facts: { 'packages:nftables': { nftables: installed('1.0.6-2') } }, commands: [], reason: 'installed: nftables' },
  {
    name: 'only the missing ones are installed, predicted installed after',
    op: 'package',
    args: { name: ['tmux', 'nftables', 'tmux'] },
    facts: { 'packages:nftables tmux': { nftables: installed('1.0.6-2'), tmux: missing } },
    commands: [{ kind: 'shell', script: `${APT_INSTALL} tmux` }],
    reason: 'install tmux',
    effects: { 'packages:nftables tmux': { nftables: installed('1.0.6-2'), tmux: { installed: true, version: null } } },
  },
  { name: 'apt alias works the same', op: 'apt', args: { name: 'tmux', state: 'present' }, facts: { 'packages:tmux': { tmux: missing } }, commands: [{ kind: 'shell', script: `${APT_INSTALL} tmux` }] },
  { name: 'absent when installed -> remove', op: 'package', args: { name: ['tmux', 'lxc'], state: 'absent' }, facts: { 'packages:lxc tmux': { tmux: installed('3.3a-3'), lxc: missing } }, commands: [{ kind: 'shell', script: 'DEBIAN_FRONTEND=noninteractive apt-get remove -y tmux' }], effects: { 'packages:lxc tmux': { tmux: missing, lxc: missing } } },
  { name: 'absent with purge', op: 'package', args: { name: 'tmux', state: 'absent', purge: true }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') } }, commands: [{ kind: 'shell', script: 'DEBIAN_FRONTEND=noninteractive apt-get purge -y tmux' }] },
  { name: 'absent when not installed -> nothing', op: 'package', args: { name: 'tmux', state: 'absent' }, facts: { 'packages:tmux': { tmux: missing } }, commands: [], reason: 'not installed' },
  { name: 'latest when older than the candidate -> install', op: 'package', args: { name: 'tmux', state: 'latest' }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') }, 'package_candidates:tmux': { tmux: '3.3a-3+deb12u1' } }, commands: [{ kind: 'shell', script: `${APT_INSTALL} tmux` }], effects: { 'packages:tmux': { tmux: installed('3.3a-3+deb12u1') } } },
  { name: 'latest at the candidate -> nothing', op: 'package', args: { name: 'tmux', state: 'latest' }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') }, 'package_candidates:tmux': { tmux: '3.3a-3' } }, commands: [], reason: 'candidate version' },
  { name: 'stale lists are refreshed before installing', op: 'package', args: { name: 'tmux', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: missing }, 'package_cache_age:': 7200 }, commands: [{ kind: 'shell', script: APT_REFRESH }, { kind: 'shell', script: `${APT_INSTALL} tmux` }], reason: 'refresh package lists (7200s old)' },
  { name: 'fresh lists are not refreshed', op: 'package', args: { name: 'tmux', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: missing }, 'package_cache_age:': 60 }, commands: [{ kind: 'shell', script: `${APT_INSTALL} tmux` }] },
  { name: 'never refreshed lists are refreshed', op: 'package', args: { name: 'tmux', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: missing }, 'package_cache_age:': null }, commands: [{ kind: 'shell', script: APT_REFRESH }, { kind: 'shell', script: `${APT_INSTALL} tmux` }] },
  { name: 'nothing to install -> no refresh either', op: 'package', args: { name: 'tmux', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') }, 'package_cache_age:': 99999 }, commands: [] },
  { name: 'update_cache without cache_valid_time refreshes when installing', op: 'package', args: { name: 'tmux', update_cache: true }, facts: { 'packages:tmux': { tmux: missing } }, commands: [{ kind: 'shell', script: APT_REFRESH }, { kind: 'shell', script: `${APT_INSTALL} tmux` }] },
  { name: 'latest with stale lists: refresh, then let apt decide', op: 'package', args: { name: 'tmux', state: 'latest', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') }, 'package_candidates:tmux': { tmux: '3.3a-3' }, 'package_cache_age:': 4000 }, commands: [{ kind: 'shell', script: APT_REFRESH }, { kind: 'shell', script: `${APT_INSTALL} tmux` }] },
  { name: 'latest with fresh lists at the candidate -> nothing', op: 'package', args: { name: 'tmux', state: 'latest', update_cache: true, cache_valid_time: 3600 }, facts: { 'packages:tmux': { tmux: installed('3.3a-3') }, 'package_candidates:tmux': { tmux: '3.3a-3' }, 'package_cache_age:': 10 }, commands: [] },
  { name: 'cache refresh only, stale', op: 'package', args: { update_cache: true, cache_valid_time: 600 }, facts: { 'package_cache_age:': 601 }, commands: [{ kind: 'shell', script: APT_REFRESH }], effects: { 'package_cache_age:': 0 } },
  { name: 'cache refresh only, fresh -> nothing', op: 'package', args: { update_cache: true, cache_valid_time: 600 }, facts: { 'package_cache_age:': 599 }, commands: [], reason: '599s old' },
  { name: 'dnf hosts use dnf', op: 'package', os: { family: 'redhat', packageManager: 'dnf' }, args: { name: ['nftables', 'tmux'] }, facts: { 'packages:nftables tmux': { nftables: missing, tmux: missing } }, commands: [{ kind: 'shell', script: 'dnf install -y nftables tmux' }] },
  { name: 'yum hosts remove with yum', op: 'package', os: { family: 'redhat', packageManager: 'yum' }, args: { name: 'tmux', state: 'absent' }, facts: { 'packages:tmux': { tmux: installed('3.2a-4.el8') } }, commands: [{ kind: 'shell', script: 'yum remove -y tmux' }] },
  { name: 'no package manager -> error', op: 'package', os: { packageManager: 'none', hostname: 'h1' }, args: { name: 'tmux' }, facts: { 'packages:tmux': { tmux: missing } }, error: 'h1 has no supported package manager' },
  { name: 'bad package name names the field', op: 'package', args: { name: ['tmux', 'rm -rf /'] }, error: 'name\\[1\\]: a package name' },
  { name: 'bad state names the field', op: 'package', args: { name: 'tmux', state: 'installed' }, error: 'state' },
  { name: 'name required without update_cache', op: 'package', args: { state: 'present' }, error: 'name: required unless update_cache' },
  { name: 'cache_valid_time needs update_cache', op: 'package', args: { name: 'tmux', cache_valid_time: 60 }, error: 'cache_valid_time: only meaningful with update_cache' },
];
