import { quote } from '../shell.js';
import type { FactModule } from '../types.js';

/**
 * Whether any entry of a directory tree (itself included, links not followed) has another
 * owner, group or mode than wanted (file's recurse). The argument is JSON {path, owner, group, mode}.
 */
export const treeDiffersFact: FactModule<boolean> = {
  name: 'tree_differs',
  command: (arg) => {
    const want = JSON.parse(arg) as { path: string; owner?: string; group?: string; mode?: string };
    const tests = [
      ...(want.owner ? [`! -user ${quote(want.owner)}`] : []),
      ...(want.group ? [`! -group ${quote(want.group)}`] : []),
      ...(want.mode ? [`\\( ! -type l ! -perm ${want.mode} \\)`] : []),
    ].join(' -o ');
    return `if [ -n "$(find -P ${quote(want.path)} \\( ${tests} \\) -print -quit 2>/dev/null </dev/null)" ]; then echo differs; else echo same; fi`;
  },
  parse: (stdout) => stdout.trim() !== 'same',
};
