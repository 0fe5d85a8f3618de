/**
 * Labs made before the lab carried debian.common.conf's lines itself include that file, which
 * only lxc-templates ships: without it LXC cannot load their configs, so it could neither stop
 * nor destroy them. destroyLab (and stopping or starting a host) rewrites the include first.
 */
import test from 'ava';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { destroyLab } from '../../src/lab/index.js';
import { labLayout } from '../../src/lab/layout.js';
import { upgradeConfig } from '../../src/lab/lxc-config.js';

const OLD = 'lxc.include = /usr/share/lxc/config/debian.common.conf\nlxc.arch = linux64\n';

test('an old config gets common.conf and the lines debian.common.conf added; a new one is left alone', (t) => {
  const upgraded = upgradeConfig(OLD)!;
  t.regex(upgraded, /^lxc\.include = \/usr\/share\/lxc\/config\/common\.conf\nlxc\.tty\.dir =\nlxc\.cgroup\.devices\.allow = c 254:0 rm\n(.*\n){3}lxc\.arch = linux64\n$/);
  t.is(upgradeConfig(upgraded), undefined);
});

test('destroyLab removes a stopped container of an old lab whose config names debian.common.conf', async (t) => {
  const root = mkdtempSync(join(tmpdir(), 'vzsb-lab-upgrade-'));
  const layout = labLayout('old-lab', root);
  const dir = join(layout.lxcPath, 'host1');
  mkdirSync(join(dir, 'rootfs'), { recursive: true });
  writeFileSync(join(dir, 'config'), `${OLD}lxc.uts.name = host1\nlxc.rootfs.path = dir:${join(dir, 'rootfs')}\nlxc.net.0.type = empty\n`);
  const before = readFileSync(join(dir, 'config'), 'utf8');
  t.regex(before, /debian\.common\.conf/);
  await destroyLab('old-lab', { root });
  t.false(existsSync(dir));
  t.false(existsSync(layout.dir));
});
