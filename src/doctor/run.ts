import { VzsbError } from '../common/errors.js';
import { run, type Runner } from '../common/exec.js';
import { CHECKS, checksFor, checksScript, describeFailures, parseCheckOutput, type CheckResult, type HostCheck, type Place } from './checks.js';

/** The roots the checks read; each defaults to the real one (tests point them elsewhere). */
export interface DoctorRoots {
  proc?: string | undefined;
  sys?: string | undefined;
  dev?: string | undefined;
  cgroup?: string | undefined;
  lxcConfigDir?: string | undefined;
  binDirs?: readonly string[] | undefined;
  modules?: string | undefined;
}

export interface DoctorOptions {
  /** whose checks: this machine (default) and/or roles */
  places?: readonly Place[];
  roots?: DoctorRoots;
  /** lab size the limits must allow (default 4) */
  labHosts?: number;
  /** leave out these checks (by id) */
  skip?: readonly string[];
  checks?: readonly HostCheck[];
  runner?: Runner;
}

const MARKER = 'VZSB_CHECK';

/** Run the checks on this machine, with sh, as a role's pre-flight runs them on its hosts. */
export async function runChecks(options: DoctorOptions = {}): Promise<CheckResult[]> {
  const checks = checksFor(options.places ?? ['control'], options.checks ?? CHECKS).filter((c) => !options.skip?.includes(c.id));
  const r = options.roots ?? {};
  const vars: Record<string, string | undefined> = {
    VZSB_PROC: r.proc,
    VZSB_SYS: r.sys,
    VZSB_DEV: r.dev,
    VZSB_CGROUP: r.cgroup,
    VZSB_LXC_CONFIG: r.lxcConfigDir,
    VZSB_BIN_DIRS: r.binDirs?.join(' '),
    VZSB_MODULES: r.modules,
    VZSB_LAB_HOSTS: options.labHosts === undefined ? undefined : String(options.labHosts),
  };
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const [k, v] of Object.entries(vars)) {
    if (v === undefined) delete env[k];
    else env[k] = v;
  }
  const result = await (options.runner ?? run)('sh', ['-c', checksScript(checks, MARKER)], { env, timeoutMs: 60_000 });
  return parseCheckOutput(checks, result.stdout, MARKER);
}

/** The error a failed pre-flight raises: every missing piece with what provides it. */
export function preflightError(what: string, results: readonly CheckResult[]): VzsbError | undefined {
  const failures = describeFailures(results);
  if (!failures.length) return undefined;
  return new VzsbError('E_PREFLIGHT', `${what}: pre-flight failed, nothing was changed:\n${failures.map((f) => `  ${f}`).join('\n')}\n(vzsb doctor shows every check)`);
}
