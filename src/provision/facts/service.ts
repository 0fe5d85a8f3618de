import { quote } from '../shell.js';
import type { FactModule } from '../types.js';
import { keyValues } from './users.js';

/** Where the fallback service manager (no systemd as PID 1) keeps its state; see docs/operations.md. */
export const FALLBACK = {
  helper: '/usr/local/lib/vzsb/service.sh',
  runDir: '/run/vzsb',
  enabledDir: '/etc/vzsb/services.enabled',
  cronFile: '/etc/cron.d/vzsb-services',
  unitDirs: ['/etc/systemd/system', '/lib/systemd/system', '/usr/lib/systemd/system'],
} as const;

export interface ServiceState {
  /** Who manages services on this host: systemd, or the vzsb fallback. */
  manager: 'systemd' | 'fallback';
  /** A unit file for the service exists (systemd: LoadState=loaded). */
  unit: boolean;
  active: boolean;
  /** systemd's is-enabled word (enabled, disabled, static, masked, ...); fallback: enabled/disabled. */
  enabled: string;
  /** Main pid when running under the fallback. */
  pid: number | null;
}

/**
 * State of one service. Adapts to the host: systemctl where PID 1 is systemd, otherwise the
 * fallback's pidfile (checked against /proc) and enabled marker.
 */
export const serviceFact: FactModule<ServiceState> = {
  name: 'service',
  command: (name) => {
    const unit = quote(`${name}.service`);
    const units = FALLBACK.unitDirs.map((d) => quote(`${d}/${name}.service`)).join(' ');
    const pidfile = quote(`${FALLBACK.runDir}/${name}.pid`);
    const marker = quote(`${FALLBACK.enabledDir}/${name}`);
    return [
      `( if [ "$(cat /proc/1/comm 2>/dev/null)" = systemd ]; then`,
      `printf 'manager=systemd\\nload=%s\\nactive=%s\\nenabled=%s\\n' "$(systemctl show -p LoadState --value ${unit} 2>/dev/null </dev/null)" "$(systemctl is-active ${unit} 2>/dev/null </dev/null)" "$(systemctl is-enabled ${unit} 2>/dev/null </dev/null)";`,
      `else echo manager=fallback; load=not-found; for f in ${units}; do if [ -f "$f" ]; then load=loaded; break; fi; done; echo "load=$load";`,
      `pid=$(cat ${pidfile} 2>/dev/null); st=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -c1);`,
      `if [ -n "$pid" ] && [ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]; then printf 'active=active\\npid=%s\\n' "$pid"; else echo active=inactive; fi;`,
      `if [ -e ${marker} ]; then echo enabled=enabled; else echo enabled=disabled; fi; fi )`,
    ].join('\n');
  },
  parse(stdout) {
    const kv = keyValues(stdout);
    const pid = Number(kv.get('pid'));
    return {
      manager: kv.get('manager') === 'systemd' ? 'systemd' : 'fallback',
      unit: kv.get('load') === 'loaded',
      active: ['active', 'activating', 'reloading'].includes(kv.get('active') ?? ''),
      enabled: kv.get('enabled') || 'unknown',
      pid: Number.isInteger(pid) && pid > 0 ? pid : null,
    };
  },
};
