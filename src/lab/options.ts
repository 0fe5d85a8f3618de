import { z } from 'zod';
import { parseInput } from '../common/validate.js';

/**
 * How a lab host boots.
 * - `systemd`: systemd as PID 1, like an ordinary target server.
 * - `script`: busybox init running a small inittab (sshd, cron). For hosts that must run
 *   their own LXC containers: nested LXC does not start inside a systemd host container on
 *   cgroup v1 (systemd replaces the controller mounts), see docs/lab.md.
 */
export type LabInit = 'systemd' | 'script';

export interface LabHostSpec {
  name: string;
  init?: LabInit;
  /** Allow LXC containers inside this host (always on for `init: 'script'`). */
  nesting?: boolean;
  /** Inventory groups besides `lab` (e.g. hypervisors, balancers, gateways). */
  groups?: string[];
}

export interface LabOptions {
  /** Lab name: lower-case letters, digits and dashes; it names the state dir and derives the bridge name. */
  name: string;
  /** A count (hosts named host1..hostN) or a list of hosts. */
  hosts: number | LabHostSpec[];
  /** Default init for hosts that do not set their own. */
  init?: LabInit;
  /** Default nesting for hosts that do not set their own. */
  nesting?: boolean;
  /** Seconds to wait for every host's sshd banner. */
  readyTimeoutSec?: number;
}

const NAME = /^[a-z][a-z0-9-]{0,39}$/;
const HOST_NAME = /^[a-z][a-z0-9-]{0,30}$/;
const GROUP = /^[a-z][a-z0-9_]{0,39}$/;
const RESERVED_GROUPS = ['all', 'ungrouped', 'lab'];
const init = z.enum(['systemd', 'script']);

const hostList = z
  .array(
    z
      .object({
        name: z.string().regex(HOST_NAME, 'a host name: a-z, 0-9, "-", starting with a letter, at most 31 characters'),
        init: init.optional(),
        nesting: z.boolean().optional(),
        groups: z
          .array(
            z
              .string()
              .regex(GROUP, 'a group name: a-z, 0-9, "_", starting with a letter')
              .refine((g) => !RESERVED_GROUPS.includes(g), `a group other than ${['all', 'ungrouped', 'lab'].join(', ')} (every host is in those)`),
          )
          .optional(),
      })
      .strict(),
  )
  .min(1)
  .max(200)
  .superRefine((hosts, ctx) => {
    const seen = new Set<string>();
    hosts.forEach((h, i) => {
      if (h.name === 'base') ctx.addIssue({ code: 'custom', path: [i, 'name'], message: '"base" is reserved for the lab base container' });
      if (seen.has(h.name)) ctx.addIssue({ code: 'custom', path: [i, 'name'], message: `duplicate host name "${h.name}"` });
      seen.add(h.name);
    });
  });

const schema = z
  .object({
    name: z.string().regex(NAME, 'a lab name: a-z, 0-9, "-", starting with a letter, at most 40 characters'),
    // a count, or a list checked on its own below so that errors name the bad entry
    hosts: z.union([z.number().int().min(1).max(200), z.array(z.unknown())]),
    init: init.optional(),
    nesting: z.boolean().optional(),
    readyTimeoutSec: z.number().positive().max(3600).optional(),
  })
  .strict();

export interface ResolvedHostSpec {
  name: string;
  init: LabInit;
  nesting: boolean;
  groups: string[];
}

export interface ResolvedLabOptions {
  name: string;
  hosts: ResolvedHostSpec[];
  readyTimeoutSec: number;
}

export function parseLabOptions(value: unknown): ResolvedLabOptions {
  const opts = parseInput(schema, value, 'lab options');
  const specs: LabHostSpec[] =
    typeof opts.hosts === 'number'
      ? Array.from({ length: opts.hosts }, (_, i) => ({ name: `host${i + 1}` }))
      : parseInput(z.object({ hosts: hostList }), { hosts: opts.hosts }, 'lab options').hosts;
  const hosts = specs.map((h) => {
    const hostInit = h.init ?? opts.init ?? 'systemd';
    return { name: h.name, init: hostInit, nesting: hostInit === 'script' || (h.nesting ?? opts.nesting ?? false), groups: [...new Set(h.groups ?? [])] };
  });
  return { name: opts.name, hosts, readyTimeoutSec: opts.readyTimeoutSec ?? 120 };
}

export function assertLabName(name: unknown): string {
  return parseInput(z.string().regex(NAME, 'a lab name: a-z, 0-9, "-", starting with a letter'), name, 'lab name');
}
