import type { CommandModule } from 'yargs';
import { balancerCommand } from './balancer.js';
import { deployCommand } from './deploy.js';
import { doctorCommand } from './doctor.js';
import { hypervisorCommand } from './hypervisor.js';
import { inventoryCommand } from './inventory.js';
import { labCommand } from './lab.js';
import { poolsCommand } from './pools.js';
import { sessionsCommand } from './sessions.js';
import { shellCommand } from './shell.js';
import { sshConfigCommand } from './ssh-config.js';

/**
 * Every `vzsb` command. A command's handler stores its exit code in `argv.exitCode`;
 * only the entry in bin/ turns it into the process exit code.
 */
export const commands: CommandModule<any, any>[] = [balancerCommand, deployCommand, doctorCommand, hypervisorCommand, inventoryCommand, labCommand, poolsCommand, sessionsCommand, shellCommand, sshConfigCommand];
