import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

/** The live value of one kernel parameter (`sysctl -n`), or null when the key does not exist here. */
export const sysctlFact: FactModule<string | null> = {
  name: 'sysctl',
  command: (name) => `( if v=$(sysctl -n ${quote(name)} 2>/dev/null </dev/null); then printf 'value=%s\\n' "$v"; else echo missing; fi )`,
  parse(stdout) {
    if (!stdout.startsWith('value=')) return null;
    return normalizeSysctlValue(stdout.slice('value='.length));
  },
};

/** Multi-value parameters print tabs (ip_local_port_range "32768\t60999"): compare with single spaces. */
export function normalizeSysctlValue(value: string): string {
  return value.trim().split(/\s+/).join(' ');
}
