import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';

/**
 * The part of OpenSSH's client configuration (~/.ssh/config) that deploys use:
 * Host (patterns, `!` negation), HostName, User, Port, IdentityFile, ProxyJump,
 * UserKnownHostsFile, StrictHostKeyChecking. First value obtained wins, as in ssh(1).
 */
export interface SshHostConfig {
  hostName?: string;
  user?: string;
  port?: number;
  identityFiles: string[];
  proxyJump?: string;
  userKnownHostsFile?: string;
  strictHostKeyChecking?: string;
}

interface Block {
  patterns: string[];
  options: Array<[string, string]>;
}

export function parseSshConfig(text: string): Block[] {
  const blocks: Block[] = [{ patterns: ['*'], options: [] }];
  for (const rawLine of text.split('\n')) {
    const line = rawLine.trim();
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?)\s*(?:=|\s)\s*(.+)$/.exec(line);
    if (!m) continue;
    const key = m[1]!.toLowerCase();
    const value = m[2]!.trim().replace(/^"(.*)"$/, '$1');
    if (key === 'host') blocks.push({ patterns: value.split(/\s+/), options: [] });
    else if (key === 'match') blocks.push({ patterns: ['!*'], options: [] }); // Match blocks are not supported: skipped
    else blocks[blocks.length - 1]!.options.push([key, value]);
  }
  return blocks;
}

function globMatch(pattern: string, host: string): boolean {
  const re = new RegExp('^' + pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$', 'i');
  return re.test(host);
}

function blockMatches(block: Block, host: string): boolean {
  let matched = false;
  for (const p of block.patterns) {
    if (p.startsWith('!')) {
      if (globMatch(p.slice(1), host)) return false;
    } else if (globMatch(p, host)) matched = true;
  }
  return matched;
}

export function resolveSshConfig(blocks: Block[], host: string): SshHostConfig {
  const out: SshHostConfig = { identityFiles: [] };
  for (const block of blocks) {
    if (!blockMatches(block, host)) continue;
    for (const [key, value] of block.options) {
      switch (key) {
        case 'hostname': out.hostName ??= value.replace(/%h/g, host); break;
        case 'user': out.user ??= value; break;
        case 'port': out.port ??= Number(value); break;
        case 'identityfile': out.identityFiles.push(expandHome(value)); break;
        case 'proxyjump': out.proxyJump ??= value; break;
        case 'userknownhostsfile': out.userKnownHostsFile ??= expandHome(value.split(/\s+/)[0]!); break;
        case 'stricthostkeychecking': out.strictHostKeyChecking ??= value.toLowerCase(); break;
      }
    }
  }
  return out;
}

export function loadSshConfig(host: string, file = `${homedir()}/.ssh/config`): SshHostConfig {
  if (!existsSync(file)) return { identityFiles: [] };
  return resolveSshConfig(parseSshConfig(readFileSync(file, 'utf8')), host);
}

export function expandHome(p: string): string {
  return p.startsWith('~/') ? `${homedir()}${p.slice(1)}` : p;
}
