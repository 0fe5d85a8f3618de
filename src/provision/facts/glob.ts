import type { FactModule } from '../types.js';

/** A glob as a shell word: * ? [ ] stay active, every other character is escaped (no splitting, no expansion). */
export function globWord(pattern: string): string {
  return [...pattern].map((c) => (/[*?[\]]/.test(c) ? c : /[A-Za-z0-9_\/.,:=@%+-]/.test(c) ? c : `\\${c === '\n' ? "'\n'" : c}`)).join('');
}

/** Whether any path matches a glob (Ansible's command creates/removes use glob.glob). */
export const globFact: FactModule<boolean> = {
  name: 'glob',
  command: (pattern) => `( r=no; for f in ${globWord(pattern)}; do if [ -e "$f" ] || [ -L "$f" ]; then r=yes; break; fi; done; echo $r )`,
  parse: (stdout) => stdout.trim() === 'yes',
};
