/**
 * The heavy test files: those that need root resources of this machine (LXC containers,
 * bridges, network namespaces, loop devices, mounts, accounts, a lab). They run one at a time
 * under the machine-wide lock (`flock /tmp/vzsb-heavy.lock npx ava FILE`), and in `npm test`.
 * Every other test file is a unit test and runs in `npm run test:unit` (scripts/test-suite.ts):
 * a new file is a unit test unless it is listed here, with the reason. test/suites.test.ts
 * checks that no entry here is stale and that no unit test uses what makes a test heavy.
 *
 * Keys are paths from the repository root; `*` matches within one folder.
 */
export const HEAVY: Readonly<Record<string, string>> = {
  'test/e2e/*.test.ts': 'a lab deployed by vzsb: LXC system containers with systemd, over SSH',
  'test/lab/classroom.test.ts': 'a lab of 24 LXC hosts; sets fs.inotify.max_user_instances',
  'test/lab/cli.test.ts': 'vzsb lab up / down: a lab of LXC hosts',
  'test/lab/lab.test.ts': 'a lab of LXC hosts',
  'test/lab/lifecycle.test.ts': 'a lab of LXC hosts, stopped and started',
  'test/lab/nested.test.ts': 'a lab host that runs LXC containers itself',
  'test/lab/upgrade.test.ts': 'lxc-destroy of an LXC container made by the test',
  'test/drivers/lxc.test.ts': 'LXC containers on a test bridge (the driver conformance suite)',
  'test/drivers/lxc-bridge.test.ts': 'LXC containers on a bridge the driver makes',
  'test/drivers/lxc-guard.test.ts': 'LXC containers on a test bridge, forged frames between them',
  'test/drivers/lxc-privileged.test.ts': 'privileged LXC containers on a test bridge',
  'test/drivers/lxc-quota.test.ts': 'LXC containers with volumes on loop devices',
  'test/hypervisor/faults-lxc.test.ts': 'the hypervisor on LXC containers, its state directory remounted read-only',
  'test/hypervisor/lxc-integration.test.ts': 'the hypervisor on LXC containers on a test bridge',
  'test/provision/ansible-compare-accounts.test.ts': "adds and removes accounts of this machine (user and group, against ansible-playbook)",
  'test/provision/deploy-ssh.test.ts': 'deploys to the sshd of lab hosts (LXC)',
  'test/provision/facts-real.test.ts': "runs the fact snippets on this machine: a network namespace, accounts",
  'test/shell/login.test.ts': 'the gateway fixture: sshd, Unix users, a hypervisor on LXC',
  'test/shell/parallel-logins.test.ts': 'the gateway fixture: sshd, Unix users, a hypervisor on LXC',
};
