import type { FactModule } from '../types.js';
import { existsFact } from './exists.js';
import { contentFact, fileFact } from './file.js';
import { osFact } from './os.js';

/** Every fact module by name. */
export const factModules: ReadonlyMap<string, FactModule> = new Map<string, FactModule>(
  [osFact, fileFact, contentFact, existsFact].map((f) => [f.name, f as FactModule]),
);
