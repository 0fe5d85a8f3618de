import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, readFile, readdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { VzsbError } from '../common/errors.js';
import type { Runner } from '../common/exec.js';

/**
 * Private /24 subnets for lab bridges: 10.236.Y.0/24. A subnet is taken by creating a
 * reservation file with O_EXCL (atomic across processes: two labs created at once never get
 * the same one) and only if no interface on this machine has an address overlapping it.
 * A reservation whose lab directory is gone is stale and is taken over.
 */
export const LAB_SUBNET_PREFIX = '10.236';

export interface Subnet {
  /** "10.236.17" */
  base: string;
  /** "10.236.17.0/24" */
  cidr: string;
  /** the bridge's own address on the host side: .1 */
  gateway: string;
}

export function subnetFor(third: number): Subnet {
  const base = `${LAB_SUBNET_PREFIX}.${third}`;
  return { base, cidr: `${base}.0/24`, gateway: `${base}.1` };
}

/** Lab host i (0-based) gets .11, .12, ... */
export function hostAddress(subnet: Subnet, index: number): string {
  if (index < 0 || index > 240) throw new VzsbError('E_LAB_SIZE', `a lab holds at most 241 hosts, host index ${index} is out of range`);
  return `${subnet.base}.${11 + index}`;
}

export async function reserveSubnet(opts: { labName: string; labDir: string; reservationDir: string; runner: Runner }): Promise<Subnet> {
  await mkdir(opts.reservationDir, { recursive: true });
  const inUse = await addressesInUse(opts.runner);
  const start = createHash('sha256').update(opts.labName).digest()[0]!;
  for (let k = 0; k < 256; k++) {
    const third = (start + k) % 256;
    const subnet = subnetFor(third);
    if (inUse.some((net) => overlaps(net, { addr: ipToInt(`${subnet.base}.0`), bits: 24 }))) continue;
    const file = join(opts.reservationDir, subnet.base);
    if (await claim(file, opts.labName, opts.labDir)) return subnet;
  }
  throw new VzsbError('E_LAB_SUBNET', `no free /24 left in ${LAB_SUBNET_PREFIX}.0.0/16 for lab ${opts.labName}: destroy unused labs`);
}

export async function releaseSubnet(reservationDir: string, labName: string): Promise<void> {
  if (!existsSync(reservationDir)) return;
  for (const entry of await readdir(reservationDir)) {
    const file = join(reservationDir, entry);
    const owner = await readFile(file, 'utf8').catch(() => '');
    if (owner.split('\n')[0] === labName) await rm(file, { force: true });
  }
}

async function claim(file: string, labName: string, labDir: string): Promise<boolean> {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(file, 'wx');
      await fh.writeFile(`${labName}\n${labDir}\n`);
      await fh.close();
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    const [, ownerDir] = (await readFile(file, 'utf8').catch(() => '')).split('\n');
    // Only a reservation whose lab is gone is taken over; one being written (no dir line yet) is left alone.
    if (!ownerDir || existsSync(ownerDir)) return false;
    await rm(file, { force: true });
  }
  return false;
}

interface Net {
  addr: number;
  bits: number;
}

async function addressesInUse(runner: Runner): Promise<Net[]> {
  const result = await runner('ip', ['-4', '-o', 'addr', 'show']);
  if (result.failed) throw new VzsbError('E_LAB_NET', `cannot list this machine's addresses: ${result.stderr.trim()}`);
  const nets: Net[] = [];
  for (const m of result.stdout.matchAll(/\binet (\d+\.\d+\.\d+\.\d+)\/(\d+)/g)) {
    nets.push({ addr: ipToInt(m[1]!), bits: Number(m[2]) });
  }
  return nets;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((acc, part) => acc * 256 + Number(part), 0);
}

function overlaps(a: Net, b: Net): boolean {
  const bits = Math.min(a.bits, b.bits);
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((a.addr & mask) >>> 0) === ((b.addr & mask) >>> 0);
}
