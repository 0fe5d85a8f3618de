import type { FactModule, OsFacts } from '../types.js';

/** Always gathered: what planning needs to know about the host itself. */
export const osFact: FactModule<OsFacts> = {
  name: 'os',
  command: () =>
    [
      '( . /etc/os-release 2>/dev/null; printf "id=%s\\nversion=%s\\nlike=%s\\n" "${ID:-unknown}" "${VERSION_ID:-}" "${ID_LIKE:-}" )',
      'printf "pm="; if command -v apt-get >/dev/null 2>&1; then echo apt; elif command -v dnf >/dev/null 2>&1; then echo dnf; elif command -v yum >/dev/null 2>&1; then echo yum; else echo none; fi',
      'printf "init=%s\\n" "$(cat /proc/1/comm 2>/dev/null)"',
      'printf "arch=%s\\nuser=%s\\nhostname=%s\\n" "$(uname -m)" "$(id -un)" "$(hostname 2>/dev/null || cat /etc/hostname)"',
    ].join('\n'),
  parse(stdout) {
    const kv = new Map<string, string>();
    for (const line of stdout.split('\n')) {
      const i = line.indexOf('=');
      if (i > 0) kv.set(line.slice(0, i), line.slice(i + 1).trim());
    }
    const id = kv.get('id') ?? 'unknown';
    const like = kv.get('like') ?? '';
    const family: OsFacts['family'] = /debian|ubuntu/.test(`${id} ${like}`)
      ? 'debian'
      : /rhel|fedora|centos|rocky|alma/.test(`${id} ${like}`)
        ? 'redhat'
        : 'unknown';
    const pm = kv.get('pm');
    return {
      id,
      versionId: kv.get('version') ?? '',
      family,
      packageManager: pm === 'apt' || pm === 'dnf' || pm === 'yum' ? pm : 'none',
      initSystem: kv.get('init') === 'systemd' ? 'systemd' : 'other',
      arch: kv.get('arch') ?? '',
      user: kv.get('user') ?? '',
      hostname: kv.get('hostname') ?? '',
    };
  },
};
