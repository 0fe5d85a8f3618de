import { z } from 'zod';
import { FALLBACK, type ServiceState } from '../facts/service.js';
import { quote } from '../shell.js';
import type { Command, FactRef, Operation, Plan } from '../types.js';
import { fileRef, planFileContent } from './common.js';
import { serviceHelperScript } from './service-helper.js';

const args = z
  .strictObject({
    name: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9:_.@-]*$/, 'a unit name like "vzsb-hypervisor"')
      .transform((s) => s.replace(/\.service$/, '')),
    state: z.enum(['started', 'stopped', 'restarted', 'reloaded']).optional(),
    enabled: z.boolean().optional(),
    /** systemd: run `systemctl daemon-reload` first (a no-op under the fallback, which reads units on each start). */
    daemon_reload: z.boolean().default(false),
    /**
     * Queue the start, stop or restart and go on without waiting for it (systemctl --no-block;
     * the fallback runs it in the background): for a service whose stop waits for its users.
     */
    no_block: z.boolean().default(false),
  })
  .superRefine((a, ctx) => {
    if (a.state === undefined && a.enabled === undefined && !a.daemon_reload) {
      ctx.addIssue({ code: 'custom', path: ['state'], message: 'one of state, enabled or daemon_reload is required' });
    }
  });
export type ServiceArgs = z.infer<typeof args>;

const serviceRef = (name: string): FactRef => ({ fact: 'service', arg: name });

// is-enabled words that mean "starts at boot" or cannot be changed by enable/disable.
const ENABLED_WORDS = new Set(['enabled', 'enabled-runtime', 'static', 'alias', 'indirect', 'generated', 'transient']);

/**
 * Ansible's `service`/`systemd`. With systemd as PID 1: systemctl. Elsewhere (containers, CI)
 * the same task runs the unit file through the fallback helper FALLBACK.helper, which the
 * operation puts on the host when missing or outdated. `restarted` always yields a command.
 */
export const serviceOperation: Operation<ServiceArgs> = {
  name: 'service',
  args,
  facts: (a) => [serviceRef(a.name), fileRef(FALLBACK.helper)],
  plan(a, { facts }) {
    const current = facts.get<ServiceState>(serviceRef(a.name));
    const systemd = facts.os.initSystem === 'systemd';
    const unit = quote(`${a.name}.service`);
    const queued = (verb: string) => a.no_block && (verb === 'start' || verb === 'stop' || verb === 'restart');
    const run = (verb: string) =>
      systemd
        ? `systemctl ${queued(verb) ? '--no-block ' : ''}${verb} ${unit}`
        : queued(verb)
          ? `setsid ${FALLBACK.helper} ${verb} ${quote(a.name)} </dev/null >/dev/null 2>&1 &`
          : `${FALLBACK.helper} ${verb} ${quote(a.name)}`;
    const commands: Command[] = [];
    const why: string[] = [];
    const effects: Array<[FactRef, unknown]> = [];

    if (current.enabled === 'masked' && (a.enabled || (a.state && a.state !== 'stopped'))) {
      throw new Error(`service ${a.name} is masked (systemctl unmask ${a.name} first)`);
    }
    if (!systemd) {
      const helper = planFileContent(facts, FALLBACK.helper, Buffer.from(serviceHelperScript), { mode: '0755', owner: 'root', group: 'root' }, false);
      if (helper.commands.length) {
        commands.push({ kind: 'shell', script: `mkdir -p ${quote(FALLBACK.helper.replace(/\/[^/]+$/, ''))}` }, ...helper.commands);
        why.push(`install ${FALLBACK.helper}`);
      }
      effects.push(...helper.effects);
    } else if (a.daemon_reload) {
      commands.push({ kind: 'shell', script: 'systemctl daemon-reload' });
    }

    const act = (verb: string, word = verb) => {
      commands.push({ kind: 'shell', script: run(verb) });
      why.push(word);
    };
    let enabled = current.enabled;
    if (a.enabled === true && !ENABLED_WORDS.has(current.enabled)) {
      act('enable');
      enabled = 'enabled';
    } else if (a.enabled === false && (current.enabled === 'enabled' || current.enabled === 'enabled-runtime')) {
      act('disable');
      enabled = 'disabled';
    }

    if (a.state === 'started' && !current.active) act('start');
    if (a.state === 'stopped' && current.active) act('stop');
    if (a.state === 'restarted') act('restart');
    // A service that is not running is started instead of reloaded (as Ansible does).
    if (a.state === 'reloaded') act(systemd && !current.active ? 'start' : 'reload', current.active ? 'reload' : 'start');
    const active = a.state === undefined ? current.active : a.state !== 'stopped';
    effects.push([serviceRef(a.name), { ...current, active, enabled } satisfies ServiceState]);

    const how = systemd ? 'systemd' : `fallback ${FALLBACK.helper}`;
    if (!why.length) {
      const plan: Plan = {
        commands,
        reason: `service ${a.name} is ${[a.state ? (current.active ? 'running' : 'stopped') : '', a.enabled !== undefined ? current.enabled : ''].filter(Boolean).join(', ') || 'unchanged'} (${how})`,
        effects,
      };
      // daemon-reload is run as asked, but alone it changes nothing a later run could see.
      if (commands.length) plan.changedWhen = { always: false };
      return plan;
    }
    return { commands, reason: `service ${a.name}: ${why.join(', ')} (${how})`, effects };
  },
};
