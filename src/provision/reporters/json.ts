import type { Reporter } from '../runner.js';

/** One JSON event per line (--json): run_start, host_start, task, host_end, run_end. */
export function jsonReporter(write: (line: string) => void): Reporter {
  const emit = (event: string, data: object) => write(JSON.stringify({ event, time: new Date().toISOString(), ...data }) + '\n');
  return {
    runStart: (info) => emit('run_start', info),
    hostStart: (host) => emit('host_start', { host }),
    task: (e) => emit('task', e),
    hostEnd: (s) => emit('host_end', s),
    runEnd: (hosts, info) => emit('run_end', { ...info, hosts }),
  };
}
