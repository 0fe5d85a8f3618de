import type { FactModule } from '../types.js';

/** Whether a check command exits 0 (command's `unless` / `onlyif`, as in Puppet's exec). */
export const succeedsFact: FactModule<boolean> = {
  name: 'succeeds',
  command: (check) => `if ( ${check}\n) >/dev/null 2>&1 </dev/null; then echo yes; else echo no; fi`,
  parse: (stdout) => stdout.trim() === 'yes',
};
