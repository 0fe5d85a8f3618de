import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareModule } from './ansible-compare/harness.js';
import { cases as command } from './ansible-compare/cases/command.js';
import { cases as copy } from './ansible-compare/cases/copy.js';
import { cases as cron } from './ansible-compare/cases/cron.js';
import { cases as file } from './ansible-compare/cases/file.js';
import { cases as lineinfile } from './ansible-compare/cases/lineinfile.js';
import { cases as sysctl } from './ansible-compare/cases/sysctl.js';

// vzsb against ansible-playbook on the file modules: sandboxes in a temp dir, nothing else touched.
const base = mkdtempSync(join(tmpdir(), 'vzsb-compare-'));
compareModule('lineinfile', base, lineinfile);
compareModule('file', base, file);
compareModule('copy', base, copy);
compareModule('cron', base, cron);
compareModule('command', base, command);
compareModule('sysctl', base, sysctl);
