import { access, readFile, stat } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { VzsbError } from '../common/errors.js';
import { parseInput } from '../common/validate.js';
import { readYamlFile, tokenValue } from '../daemons/balancer/config.js';

/**
 * Where the instructor commands find the balancer(s) and the admin token, first match wins:
 *   balancers: --balancer, then $VZSB_BALANCER, then `balancers:` in the config file;
 *   token:     --token-file, then $VZSB_ADMIN_TOKEN, then `tokenFile:` or `token:` in the config file.
 * The config file is ~/.config/vzsandbox/admin.yaml, else /etc/vzsandbox/admin.yaml.
 * A token is never taken from argv (it would show in `ps`), and a file holding one must not
 * be readable by everyone.
 */
export interface AdminTarget {
  balancers: string[];
  token: string;
  timeoutMs: number;
  /** Where the balancers and the token came from, for messages. */
  from: { balancers: string; token: string };
}

export interface AdminFlags {
  balancer?: string[];
  tokenFile?: string;
  timeout?: number;
  /** An inventory deployed with `vzsb deploy`: its balancers, and the admin token in the vzsb-secrets.yaml beside it. */
  inventory?: string;
}

export interface ResolveEnv {
  env?: NodeJS.ProcessEnv;
  /** Config files in order of preference (default: the two above). */
  configFiles?: string[];
}

const urlSchema = z
  .string()
  .regex(/^https?:\/\/[^\s/]+/, 'expected an http:// or https:// URL')
  .transform((u) => u.replace(/\/+$/, ''));

const adminFileSchema = z
  .strictObject({
    balancers: z.union([urlSchema.transform((u) => [u]), z.array(urlSchema).min(1, 'at least one balancer URL')]).optional(),
    token: tokenValue.optional(),
    tokenFile: z.string().min(1).optional(),
    timeoutMs: z.number().int().min(100).max(600_000).optional(),
  })
  .refine((f) => !(f.token && f.tokenFile), { message: 'set token or tokenFile, not both', path: ['token'] });
type AdminFile = z.infer<typeof adminFileSchema>;

export const DEFAULT_TIMEOUT_MS = 30_000;

export function defaultConfigFiles(env: NodeJS.ProcessEnv = process.env): string[] {
  const home = env.HOME || homedir();
  const xdg = env.XDG_CONFIG_HOME || join(home, '.config');
  return [join(xdg, 'vzsandbox', 'admin.yaml'), '/etc/vzsandbox/admin.yaml'];
}

export async function resolveAdminTarget(flags: AdminFlags, options: ResolveEnv = {}): Promise<AdminTarget> {
  if (flags.inventory) {
    const fromInventory = await inventoryTarget(flags.inventory);
    return {
      ...fromInventory,
      ...(flags.balancer?.length ? { balancers: flags.balancer.flatMap(splitList).map((u, i) => parseInput(urlSchema, u, `--balancer[${i}]`)) } : {}),
      ...(flags.tokenFile ? { token: await readTokenFile(flags.tokenFile, '--token-file') } : {}),
      timeoutMs: flags.timeout !== undefined ? flags.timeout * 1000 : DEFAULT_TIMEOUT_MS,
    };
  }
  const env = options.env ?? process.env;
  let file: { path: string; data: AdminFile } | undefined | null = null;
  const configFile = async () => {
    if (file === null) file = await loadAdminFile(options.configFiles ?? defaultConfigFiles(env));
    return file;
  };

  let balancers: string[] | undefined;
  let balancersFrom = '';
  const fromFlags = (flags.balancer ?? []).flatMap(splitList);
  if (fromFlags.length > 0) {
    balancers = fromFlags.map((u, i) => parseInput(urlSchema, u, `--balancer[${i}]`));
    balancersFrom = '--balancer';
  } else if (env.VZSB_BALANCER?.trim()) {
    balancers = splitList(env.VZSB_BALANCER).map((u, i) => parseInput(urlSchema, u, `VZSB_BALANCER[${i}]`));
    balancersFrom = 'VZSB_BALANCER';
  } else {
    const f = await configFile();
    if (f?.data.balancers) {
      balancers = f.data.balancers;
      balancersFrom = f.path;
    }
  }
  if (!balancers || balancers.length === 0) {
    throw new VzsbError('E_CONFIG', `no balancer given: pass --balancer URL, set VZSB_BALANCER, or write "balancers:" in ${defaultConfigFiles(env).join(' or ')}`);
  }

  let token: string | undefined;
  let tokenFrom = '';
  if (flags.tokenFile) {
    token = await readTokenFile(flags.tokenFile, '--token-file');
    tokenFrom = flags.tokenFile;
  } else if (env.VZSB_ADMIN_TOKEN !== undefined && env.VZSB_ADMIN_TOKEN !== '') {
    token = parseInput(tokenValue, env.VZSB_ADMIN_TOKEN.trim(), 'VZSB_ADMIN_TOKEN');
    tokenFrom = 'VZSB_ADMIN_TOKEN';
  } else {
    const f = await configFile();
    if (f?.data.tokenFile) {
      token = await readTokenFile(f.data.tokenFile, `${f.path}: tokenFile`);
      tokenFrom = f.data.tokenFile;
    } else if (f?.data.token) {
      await refuseWorldReadable(f.path, `${f.path} holds a token`);
      token = f.data.token;
      tokenFrom = f.path;
    }
  }
  if (!token) {
    throw new VzsbError('E_CONFIG', `no admin token given: pass --token-file FILE, set VZSB_ADMIN_TOKEN, or write "tokenFile:" in ${defaultConfigFiles(env).join(' or ')}`);
  }
  const timeoutMs = flags.timeout !== undefined ? flags.timeout * 1000 : ((await configFile())?.data.timeoutMs ?? DEFAULT_TIMEOUT_MS);
  return { balancers, token, timeoutMs, from: { balancers: balancersFrom, token: tokenFrom } };
}

function splitList(value: string): string[] {
  return value.split(/[\s,]+/).filter((s) => s !== '');
}

async function loadAdminFile(paths: string[]): Promise<{ path: string; data: AdminFile } | undefined> {
  for (const path of paths) {
    if (!(await exists(path))) continue;
    const data = (await readYamlFile(path)) ?? {};
    return { path, data: parseInput(adminFileSchema, data, path) };
  }
  return undefined;
}

async function readTokenFile(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw new VzsbError('E_CONFIG', `${what}: cannot read ${path}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { cause: err });
  }
  await refuseWorldReadable(path, `${what}: ${path}`);
  return parseInput(tokenValue, text.split('\n')[0]!.trim(), `${what}: ${path}`);
}

async function refuseWorldReadable(path: string, what: string): Promise<void> {
  const mode = (await stat(path)).mode;
  if (mode & 0o004) {
    throw new VzsbError('E_CONFIG', `${what} is readable by every user (mode ${(mode & 0o777).toString(8)}); chmod o-r ${path}`);
  }
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(
    () => true,
    () => false,
  );
}

/**
 * The balancers of a deployed inventory (group `balancers`, ansible_host, balancer_port or
 * 8760) and the admin token that `vzsb deploy` made in vzsb-secrets.yaml beside it.
 */
async function inventoryTarget(path: string): Promise<Omit<AdminTarget, 'timeoutMs'>> {
  const { loadInventory, groupHosts } = await import('../provision/inventory/index.js');
  const inventory = await loadInventory(path);
  if (!inventory.groups.has('balancers')) throw new VzsbError('E_CONFIG', `${path}: no group "balancers"`);
  const balancers = groupHosts(inventory, 'balancers').map((name) => {
    const host = inventory.hosts.get(name)!;
    const port = Number(host.vars.balancer_port ?? 8760);
    return `http://${host.connection.host.includes(':') ? `[${host.connection.host}]` : host.connection.host}:${port}`;
  });
  if (balancers.length === 0) throw new VzsbError('E_CONFIG', `${path}: the group "balancers" has no hosts`);
  const secrets = join(dirname(inventory.source), 'vzsb-secrets.yaml');
  await refuseWorldReadable(secrets, secrets).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new VzsbError('E_CONFIG', `${secrets} does not exist: deploy the inventory first (vzsb deploy ${path})`);
    throw err;
  });
  const data = (await readYamlFile(secrets)) as Record<string, unknown> | null;
  const token = data?.['balancer-admin'];
  if (typeof token !== 'string') throw new VzsbError('E_CONFIG', `${secrets}: no balancer-admin token (deploy the balancers first)`);
  return { balancers, token, from: { balancers: path, token: secrets } };
}
