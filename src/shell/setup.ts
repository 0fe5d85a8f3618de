import { chmod, chown, mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { VzsbError } from '../common/errors.js';
import { run, runChecked, type Runner } from '../common/exec.js';
import { packageRoot } from '../common/paths.js';
import { createTemplating } from '../provision/templating.js';
import { agentSocketPath } from './agent-paths.js';
import { KEPT_VARS } from './invocation.js';

/**
 * Prepare a machine to be a gateway: the service user that runs sessions, the students'
 * group, the gateway config (0640 root:<service user>), the log and session directories, the
 * wrapper login shell (listed in /etc/shells) and the sudoers rule that joins them, checked
 * with `visudo -cf` before it is put in place. The deploy playbook of the gateway role renders
 * the same templates (templates/gateway/) with `gatewayTemplateVars`. Idempotent: a second
 * run changes nothing and says so.
 */
export interface GatewaySettings {
  balancers: string[];
  token: string;
  timeouts?: Partial<Record<'connectMs' | 'requestMs' | 'leaseMs' | 'releaseMs' | 'sshReadyMs' | 'sshConnectMs', number>>;
  logFile: string;
  logLevel: 'debug' | 'info' | 'warn' | 'error';
  sessionsDir: string;
  maxSessionsPerUser?: number;
  agentDrainSeconds?: number;
}

export interface GatewaySetupOptions {
  serviceUser: string;
  studentsGroup: string;
  configPath: string;
  wrapperPath: string;
  sudoersPath: string;
  shellsFile: string;
  sudoPath: string;
  /**
   * The login's client (templates/gateway/vzsb-client.pl.hbs): the one command students may
   * run through sudo, without arguments. It hands the login to the session agent.
   */
  clientPath: string;
  /** The standalone session process (node, its flags, the entry, arguments): what the client runs when no agent listens. */
  sessionCommand: string[];
  /** Name of the sudoers Cmnd_Alias (upper case; unique on the machine). */
  cmndAlias: string;
  gateway: GatewaySettings;
}

export function defaultSetupOptions(gateway: GatewaySettings): GatewaySetupOptions {
  return {
    serviceUser: 'vzsb-gateway',
    studentsGroup: 'vzsb-students',
    configPath: '/etc/vzsandbox/gateway.yaml',
    wrapperPath: '/usr/local/bin/vzsb-shell',
    sudoersPath: '/etc/sudoers.d/vzsb-gateway',
    shellsFile: '/etc/shells',
    sudoPath: '/usr/bin/sudo',
    clientPath: '/usr/local/lib/vzsandbox/vzsb-client',
    sessionCommand: [process.execPath, join(packageRoot(), 'dist', 'shell', 'main.js'), '--session'],
    cmndAlias: 'VZSB_SESSION',
    gateway,
  };
}

const NAME = /^[a-z_][a-z0-9_-]{0,31}$/;
const WORD = /^[A-Za-z0-9/._=:+@-]+$/;

/** The variables of templates/gateway/*.hbs; one place validates and quotes them. */
export function gatewayTemplateVars(o: GatewaySetupOptions): Record<string, unknown> {
  for (const [field, v] of [['serviceUser', o.serviceUser], ['studentsGroup', o.studentsGroup]] as const) {
    if (!NAME.test(v)) throw new VzsbError('E_INVALID', `${field}: expected a Unix user or group name, got ${JSON.stringify(v)}`);
  }
  if (!/^[A-Z][A-Z0-9_]*$/.test(o.cmndAlias)) throw new VzsbError('E_INVALID', `cmndAlias: expected upper-case letters, digits and _, got ${JSON.stringify(o.cmndAlias)}`);
  for (const [field, v] of [['configPath', o.configPath], ['wrapperPath', o.wrapperPath], ['sudoersPath', o.sudoersPath], ['sudoPath', o.sudoPath], ['clientPath', o.clientPath], ['sessionsDir', o.gateway.sessionsDir]] as const) {
    if (!v.startsWith('/') || !WORD.test(v)) throw new VzsbError('E_INVALID', `${field}: expected an absolute path of plain characters, got ${JSON.stringify(v)}`);
  }
  if (/\.[^/]*$/.test(o.sudoersPath.slice(o.sudoersPath.lastIndexOf('/'))) || o.sudoersPath.endsWith('~')) {
    throw new VzsbError('E_INVALID', `sudoersPath: sudo skips files in sudoers.d whose name has a "." or ends in "~", got ${JSON.stringify(o.sudoersPath)}`);
  }
  if (o.sessionCommand.length === 0 || !o.sessionCommand[0]!.startsWith('/')) throw new VzsbError('E_INVALID', 'sessionCommand: expected an absolute program path first');
  o.sessionCommand.forEach((w, i) => {
    if (!WORD.test(w)) throw new VzsbError('E_INVALID', `sessionCommand[${i}]: expected a word of plain characters, got ${JSON.stringify(w)}`);
  });
  return {
    ...o,
    ...o.gateway,
    timeouts: o.gateway.timeouts ?? {},
    maxSessionsPerUser: o.gateway.maxSessionsPerUser ?? 8,
    agentDrainSeconds: o.gateway.agentDrainSeconds ?? 3600,
    keptVars: KEPT_VARS.join(' '),
    agentSocket: agentSocketPath(o.gateway),
    sessionCommandSh: o.sessionCommand.map(shQuote).join(' '),
    sessionCommandPerl: o.sessionCommand.map((w) => `'${w}'`).join(', '),
  };
}

export interface RenderedGateway {
  wrapper: string;
  client: string;
  sudoers: string;
  config: string;
}

export async function renderGatewayFiles(o: GatewaySetupOptions): Promise<RenderedGateway> {
  const vars = gatewayTemplateVars(o);
  const t = createTemplating();
  const dir = join(packageRoot(), 'templates', 'gateway');
  return {
    wrapper: await t.renderFile(join(dir, 'vzsb-shell.sh.hbs'), vars, 'templates/gateway/vzsb-shell.sh.hbs'),
    client: await t.renderFile(join(dir, 'vzsb-client.pl.hbs'), vars, 'templates/gateway/vzsb-client.pl.hbs'),
    sudoers: await t.renderFile(join(dir, 'sudoers.hbs'), vars, 'templates/gateway/sudoers.hbs'),
    config: await t.renderFile(join(dir, 'gateway.yaml.hbs'), vars, 'templates/gateway/gateway.yaml.hbs'),
  };
}

export interface SetupReport {
  changed: string[];
  ok: string[];
}

export async function setupGateway(o: GatewaySetupOptions, runner: Runner = run): Promise<SetupReport> {
  const files = await renderGatewayFiles(o);
  const { parseGatewayConfig, parseConfigText } = await import('./config.js');
  parseGatewayConfig(await parseConfigText(files.config, o.configPath), o.configPath);
  // A rule for a program that is not there would only show at the first student's login.
  for (const [i, word] of o.sessionCommand.entries()) {
    if ((i === 0 || /\.(m?js|ts)$/.test(word)) && word.startsWith('/') && !(await stat(word).catch(() => undefined))?.isFile()) {
      throw new VzsbError('E_INVALID', `sessionCommand[${i}]: ${word} does not exist${i > 0 ? ' (is the package built? npm run build)' : ''}`);
    }
  }
  const report: SetupReport = { changed: [], ok: [] };
  const note = (changed: boolean, what: string) => (changed ? report.changed : report.ok).push(what);

  if ((await runner('getent', ['group', o.studentsGroup])).exitCode !== 0) {
    await runChecked('groupadd', [o.studentsGroup], {}, runner);
    note(true, `group ${o.studentsGroup} created`);
  } else note(false, `group ${o.studentsGroup} exists`);
  if ((await runner('getent', ['passwd', o.serviceUser])).exitCode !== 0) {
    await runChecked('useradd', ['--system', '--user-group', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', o.serviceUser], {}, runner);
    note(true, `service user ${o.serviceUser} created`);
  } else note(false, `service user ${o.serviceUser} exists`);
  const ids = await idsOf(o.serviceUser, runner);

  note(await putFile(o.configPath, files.config, 0o640, 0, ids.gid, 0o755), `${o.configPath} (0640 root:${o.serviceUser})`);
  const logDir = dirname(o.gateway.logFile);
  note(await ensureDir(logDir, 0o750, ids.uid, ids.gid), `${logDir}/ (0750 ${o.serviceUser})`);
  await writeFile(o.gateway.logFile, '', { flag: 'a', mode: 0o640 });
  await chown(o.gateway.logFile, ids.uid, ids.gid);
  await chmod(o.gateway.logFile, 0o640);
  note(await ensureDir(o.gateway.sessionsDir, 0o700, ids.uid, ids.gid), `${o.gateway.sessionsDir}/ (0700 ${o.serviceUser})`);
  note(await putFile(o.wrapperPath, files.wrapper, 0o755, 0, 0, 0o755), `${o.wrapperPath} (0755 root)`);
  note(await putFile(o.clientPath, files.client, 0o755, 0, 0, 0o755), `${o.clientPath} (0755 root)`);
  note(await putSudoers(o.sudoersPath, files.sudoers, runner), `${o.sudoersPath} (0440 root, visudo -cf)`);
  note(await addLine(o.shellsFile, o.wrapperPath), `${o.wrapperPath} in ${o.shellsFile}`);
  return report;
}

/** Undo setupGateway (decommissioning a gateway; test teardown). The students' group stays unless asked. */
export async function removeGateway(o: GatewaySetupOptions, options: { removeGroup?: boolean } = {}, runner: Runner = run): Promise<void> {
  await rm(o.sudoersPath, { force: true });
  await removeLine(o.shellsFile, o.wrapperPath);
  await rm(o.wrapperPath, { force: true });
  await rm(o.clientPath, { force: true });
  await rm(o.configPath, { force: true });
  await rm(o.gateway.sessionsDir, { recursive: true, force: true });
  if ((await runner('getent', ['passwd', o.serviceUser])).exitCode === 0) await runner('userdel', [o.serviceUser]);
  if ((await runner('getent', ['group', o.serviceUser])).exitCode === 0) await runner('groupdel', [o.serviceUser]);
  if (options.removeGroup) await runner('groupdel', [o.studentsGroup]);
}

async function idsOf(user: string, runner: Runner): Promise<{ uid: number; gid: number }> {
  const line = (await runChecked('getent', ['passwd', user], {}, runner)).stdout.trim().split(':');
  return { uid: Number(line[2]), gid: Number(line[3]) };
}

async function readOr(path: string): Promise<string | undefined> {
  return readFile(path, 'utf8').catch(() => undefined);
}

/** Write through a temporary name beside the target, with owner and mode set before it appears. */
async function putFile(path: string, content: string, mode: number, uid: number, gid: number, dirMode: number): Promise<boolean> {
  await mkdir(dirname(path), { recursive: true, mode: dirMode });
  const same = (await readOr(path)) === content;
  const st = await stat(path).catch(() => undefined);
  if (same && st && (st.mode & 0o7777) === mode && st.uid === uid && st.gid === gid) return false;
  const tmp = `${path}.vzsb-tmp`;
  await writeFile(tmp, content, { mode: 0o600 });
  await chown(tmp, uid, gid);
  await chmod(tmp, mode);
  await rename(tmp, path);
  return true;
}

async function ensureDir(path: string, mode: number, uid: number, gid: number): Promise<boolean> {
  const st = await stat(path).catch(() => undefined);
  if (st?.isDirectory() && (st.mode & 0o7777) === mode && st.uid === uid && st.gid === gid) return false;
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  await mkdir(path, { recursive: true, mode });
  await chown(path, uid, gid);
  await chmod(path, mode);
  return true;
}

/** sudoers.d ignores names with a ".": the candidate is checked there, then renamed into place. */
async function putSudoers(path: string, content: string, runner: Runner): Promise<boolean> {
  if ((await readOr(path)) === content) return false;
  const tmp = join(dirname(path), `.${path.slice(path.lastIndexOf('/') + 1)}.vzsb-tmp`);
  await writeFile(tmp, content, { mode: 0o440 });
  try {
    const check = await runner('visudo', ['-cf', tmp]);
    if (check.exitCode !== 0) throw new VzsbError('E_SUDOERS', `visudo rejects the rendered ${path}: ${(check.stderr || check.stdout).trim()}`);
    await chmod(tmp, 0o440);
    await rename(tmp, path);
  } finally {
    await rm(tmp, { force: true });
  }
  return true;
}

async function addLine(file: string, line: string): Promise<boolean> {
  const text = (await readOr(file)) ?? '';
  if (text.split('\n').includes(line)) return false;
  await writeFile(file, `${text}${text === '' || text.endsWith('\n') ? '' : '\n'}${line}\n`);
  return true;
}

async function removeLine(file: string, line: string): Promise<void> {
  const text = await readOr(file);
  if (text === undefined || !text.split('\n').includes(line)) return;
  await writeFile(file, text.split('\n').filter((l) => l !== line).join('\n'));
}

function shQuote(word: string): string {
  return /^[A-Za-z0-9/._=:+@-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}
