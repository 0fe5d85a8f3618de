import type { Operation } from '../types.js';
import { commandOperation, shellOperation } from './command.js';
import { copyOperation } from './copy.js';
import { cronOperation } from './cron.js';
import { fileOperation } from './file.js';
import { groupOperation } from './group.js';
import { lineinfileOperation } from './lineinfile.js';
import { nftablesOperation } from './nftables.js';
import { packageOperation } from './package.js';
import { preflightOperation } from './preflight.js';
import { serviceOperation } from './service.js';
import { sysctlOperation } from './sysctl.js';
import { templateOperation } from './template.js';
import { userOperation } from './user.js';

/** Every operation by the module name a task uses (with Ansible's aliases). */
export const operations: ReadonlyMap<string, Operation> = new Map<string, Operation>([
  ['file', fileOperation],
  ['copy', copyOperation],
  ['template', templateOperation],
  ['command', commandOperation],
  ['shell', shellOperation],
  ['package', packageOperation],
  ['apt', packageOperation],
  ['dnf', packageOperation],
  ['lineinfile', lineinfileOperation],
  ['user', userOperation],
  ['group', groupOperation],
  ['service', serviceOperation],
  ['systemd', serviceOperation],
  ['cron', cronOperation],
  ['nftables', nftablesOperation],
  ['sysctl', sysctlOperation],
  ['preflight', preflightOperation],
]);
