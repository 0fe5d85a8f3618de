#!/usr/bin/env node
// The bundled CLI (npm run build). Exit codes: see docs/cli.md.
import '../dist/vzsb.mjs';
