import type { FactModule } from '../types.js';
import { crontabFact } from './crontab.js';
import { existsFact } from './exists.js';
import { globFact } from './glob.js';
import { treeDiffersFact } from './tree.js';
import { contentFact, fileFact } from './file.js';
import { nftablesFact } from './nftables.js';
import { osFact } from './os.js';
import { preflightFact } from './preflight.js';
import { packageCacheAgeFact, packageCandidatesFact, packagesFact } from './packages.js';
import { serviceFact } from './service.js';
import { succeedsFact } from './succeeds.js';
import { sysctlFact } from './sysctl.js';
import { groupFact, userFact } from './users.js';

/** Every fact module by name. */
export const factModules: ReadonlyMap<string, FactModule> = new Map<string, FactModule>(
  [osFact, fileFact, contentFact, existsFact, packagesFact, packageCandidatesFact, packageCacheAgeFact, userFact, groupFact, serviceFact, sysctlFact, nftablesFact, succeedsFact, preflightFact, crontabFact, treeDiffersFact, globFact].map((f) => [f.name, f as FactModule]),
);
