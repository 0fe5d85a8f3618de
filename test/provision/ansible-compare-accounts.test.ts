import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { compareModule } from './ansible-compare/harness.js';
import { groupCases, userCases } from './ansible-compare/cases/accounts.js';

// vzsb against ansible-playbook on user and group: these change this machine's accounts (names
// unique to the run, removed after each tool), so this file is not in test:unit.
const base = mkdtempSync(join(tmpdir(), 'vzsb-compare-'));
compareModule('user', base, userCases);
compareModule('group', base, groupCases);
