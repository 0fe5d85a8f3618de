import { CHECKS, checksFor, checksScript, parseCheckOutput, type Place } from '../../doctor/checks.js';
import type { FactModule } from '../types.js';

/** One check's outcome on a host, as planning sees it. */
export interface PreflightResult {
  id: string;
  title: string;
  ok: boolean;
  detail: string;
  fix: string;
}

const MARKER = 'VZSB_CHECK';
const places = (arg: string) => arg.split(',').filter(Boolean) as Place[];

/**
 * The pre-flight checks of src/doctor/checks.ts for the given roles (arg: "hypervisor" or
 * "balancer,gateway"), run on the host in the facts round trip, before anything is changed.
 */
export const preflightFact: FactModule<PreflightResult[]> = {
  name: 'preflight',
  command: (arg) => checksScript(checksFor(places(arg), CHECKS), MARKER),
  parse: (stdout, arg) =>
    parseCheckOutput(checksFor(places(arg), CHECKS), stdout, MARKER).map((r) => ({ id: r.check.id, title: r.check.title, ok: r.ok, detail: r.detail, fix: r.check.fix })),
};
