import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

/** Whether a path exists (creates= / removes= of command tasks). */
export const existsFact: FactModule<boolean> = {
  name: 'exists',
  command: (path) => `if [ -e ${quote(path)} ] || [ -L ${quote(path)} ]; then echo yes; else echo no; fi`,
  parse: (stdout) => stdout.trim() === 'yes',
};
