import test from 'ava';
import { hostConfig, loopDeviceLines } from '../../src/lab/lxc-config.js';
import { dataDiskPaths } from '../../src/lab/data-disk.js';

// Pure: the LXC configuration a lab host that runs containers gets for its disk volumes.
const host = {
  name: 'hyp1',
  rootfsPath: 'overlay:/l:/u',
  init: 'systemd' as const,
  bridge: 'vzlab0',
  address: '10.236.1.11',
  prefixLength: 24,
  gateway: '10.236.1.1',
  hwaddr: '02:76:7a:01:00:00',
  consoleLog: '/x/console.log',
  lxcLog: '/x/lxc.log',
};

test('lab: a nesting host gets its data disk at the containers directory and the loop devices its volumes need', (t) => {
  const { mountPoint } = dataDiskPaths('/var/lib/vzsandbox/labs/x', 'hyp1');
  t.is(mountPoint, '/var/lib/vzsandbox/labs/x/data/hyp1');
  const text = hostConfig({ ...host, nesting: true, containersDir: mountPoint, cgroupVersion: 1 });
  t.true(text.includes(`lxc.mount.entry = ${mountPoint} var/lib/vzsandbox/containers none bind,create=dir 0 0\n`));
  t.true(text.includes('lxc.cgroup.devices.allow = b 7:* rwm\n'));
  t.true(text.includes('lxc.cgroup.devices.allow = c 10:237 rwm\n'));
  t.true(text.includes('lxc.mount.entry = /dev/loop-control dev/loop-control none bind,create=file 0 0\n'));
  t.deepEqual(loopDeviceLines(2).slice(0, 2), ['lxc.cgroup2.devices.allow = c 10:237 rwm', 'lxc.cgroup2.devices.allow = b 7:* rwm']);
  const plain = hostConfig({ ...host, nesting: false, cgroupVersion: 1 });
  t.false(plain.includes('loop'), 'a host without containers gets no loop devices');
});
