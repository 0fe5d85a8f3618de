import { createHash } from 'node:crypto';
import { join } from 'node:path';

/** Where labs keep their state unless told otherwise. */
export const DEFAULT_LAB_ROOT = '/var/lib/vzsandbox/labs';

/**
 * Every path and name one lab owns, derived from its name alone, so that destroyLab can
 * clean up a half-made lab whose state file was never written.
 */
export interface LabLayout {
  name: string;
  dir: string;
  /** lxc-* -P: containers of this lab only */
  lxcPath: string;
  keyFile: string;
  knownHostsFile: string;
  stateFile: string;
  hostKeysDir: string;
  /** Linux interface names are at most 15 bytes: derive a short, stable one from the lab name. */
  bridge: string;
}

export function labLayout(name: string, root: string = DEFAULT_LAB_ROOT): LabLayout {
  const dir = join(root, name);
  return {
    name,
    dir,
    lxcPath: join(dir, 'lxc'),
    keyFile: join(dir, 'id_ed25519'),
    knownHostsFile: join(dir, 'known_hosts'),
    stateFile: join(dir, 'lab.json'),
    hostKeysDir: join(dir, 'host-keys'),
    bridge: bridgeName(name),
  };
}

export function bridgeName(labName: string): string {
  return `vzlab${createHash('sha256').update(labName).digest('hex').slice(0, 8)}`;
}

/** Reservations of /24 subnets live beside the labs: one file per subnet, made with O_EXCL. */
export function subnetReservationDir(root: string = DEFAULT_LAB_ROOT): string {
  return join(root, '.subnets');
}
