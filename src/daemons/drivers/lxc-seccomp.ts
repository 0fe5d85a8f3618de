/**
 * The seccomp profile of student containers (LXC's format 2, a deny list). The user
 * namespace already refuses most of these to root inside (they need capabilities in the
 * host's namespace); the filter takes them away before any permission check runs, so a
 * kernel bug behind one of them is out of a student's reach too. The driver writes it beside
 * the base (`<lxcPath>/<base>/vzsb.seccomp`) and every clone's config names it.
 *
 * Denied, each with EPERM:
 * - bpf, perf_event_open: large kernel surfaces, and a window on the host's activity
 * - keyctl, add_key, request_key: keyrings are not namespaced
 * - init_module, finit_module, delete_module, kexec_load, kexec_file_load, uselib
 * - open_by_handle_at: opens files by handle, around any mount (the "shocker" escape)
 * - syslog: the host's kernel log (dmesg)
 * - iopl, ioperm: port I/O
 * - acct, swapon, swapoff, lookup_dcookie, nfsservctl, userfaultfd
 * Not denied: mount (students mount tmpfs), unshare and setns (nested namespaces), ptrace of
 * their own processes, reboot (inside a PID namespace it only ends the container).
 */
export const SECCOMP_DENIED: readonly string[] = [
  'bpf',
  'perf_event_open',
  'keyctl',
  'add_key',
  'request_key',
  'init_module',
  'finit_module',
  'delete_module',
  'kexec_load',
  'kexec_file_load',
  'uselib',
  'open_by_handle_at',
  'syslog',
  'iopl',
  'ioperm',
  'acct',
  'swapon',
  'swapoff',
  'lookup_dcookie',
  'nfsservctl',
  'userfaultfd',
];

/** EPERM */
const ERRNO = 1;

export function seccompProfile(): string {
  return [
    '2',
    'denylist',
    // umount -f of a mount the container cannot see the other side of
    'reject_force_umount',
    '[all]',
    ...SECCOMP_DENIED.map((name) => `${name} errno ${ERRNO}`),
    '',
  ].join('\n');
}

export const SECCOMP_FILE = 'vzsb.seccomp';
