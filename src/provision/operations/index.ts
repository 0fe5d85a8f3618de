import type { Operation } from '../types.js';
import { commandOperation } from './command.js';
import { copyOperation } from './copy.js';
import { fileOperation } from './file.js';
import { templateOperation } from './template.js';

/** Every operation by the module name a task uses (with Ansible's aliases). */
export const operations: ReadonlyMap<string, Operation> = new Map<string, Operation>([
  ['file', fileOperation],
  ['copy', copyOperation],
  ['template', templateOperation],
  ['command', commandOperation],
  ['shell', commandOperation],
]);
