#!/usr/bin/env node
// The CLI as built by `npm run build` (split into chunks: a command loads only its own code).
// Exit codes: see docs/provisioning.md and docs/instructors.md.
import '../dist/cli/entry.js';
