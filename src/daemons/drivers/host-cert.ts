import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runChecked, type Runner } from '../../common/exec.js';

/**
 * Host certificates for the containers' sshd: each clone's fresh host key is signed by the
 * sandbox host CA, so a student's OpenSSH client that trusts the CA (one `@cert-authority
 * sandbox ...` line in known_hosts) accepts every container, and every container after a reset,
 * without a changed-key warning. The CA's private key is a file only the daemon reads (0600,
 * root); deploy makes the CA once and puts it there.
 */
export interface HostCa {
  /** The CA's private key (OpenSSH format). */
  keyFile: string;
  /** Names the certificate is valid for: what students' clients use (HostKeyAlias). */
  principals: string[];
  /** How long a certificate is valid: ssh-keygen's -V interval. */
  validity: string;
}

/** The principal students' ssh config names the sandbox by (HostKeyAlias sandbox). */
export const SANDBOX_PRINCIPAL = 'sandbox';
/**
 * A container lives for one lease and a student can read its host key and certificate: bounded,
 * with a few minutes back for clock differences between the hypervisor and the student's laptop.
 */
export const DEFAULT_CERT_VALIDITY = '-5m:+30d';

/**
 * The host certificate (an `...-cert-v01@openssh.com` line) for `publicKey`, made by
 * `ssh-keygen -s CA -h` in a fresh directory under `scratchDir` (host-only), which is removed.
 */
export async function signHostKey(runner: Runner, scratchDir: string, publicKey: string, identity: string, ca: HostCa): Promise<string> {
  const dir = await mkdtemp(join(scratchDir, '.hostcert-'));
  try {
    const file = join(dir, 'key.pub');
    await writeFile(file, publicKey.trim() + '\n');
    await runChecked('ssh-keygen', ['-q', '-s', ca.keyFile, '-h', '-I', identity, '-n', ca.principals.join(','), '-V', ca.validity, file], {}, runner);
    return (await readFile(join(dir, 'key-cert.pub'), 'utf8')).trim();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
