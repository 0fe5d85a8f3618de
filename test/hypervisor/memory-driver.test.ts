import test from 'ava';
import { runDriverConformance } from '../../src/daemons/drivers/conformance.js';
import { MemoryDriver } from '../../src/daemons/drivers/memory.js';

// The pool's unit tests trust the in-memory driver to behave like a real one where it can.
runDriverConformance(test, 'memory', () => new MemoryDriver({ prefix: 'vzm-', latencyMs: 1 }), {
  ids: Array.from({ length: 10 }, (_, i) => `vzm-${i + 1}`),
  skip: {
    ssh: 'the memory driver runs no sshd',
    exec: 'the memory driver runs no processes (only a few builtin commands)',
  },
});
