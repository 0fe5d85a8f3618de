import { writeFileSync } from 'node:fs';
import type { CompareCase } from '../harness.js';

const JOB = '#Ansible: backup\n0 3 * * * root /usr/bin/backup\n';

// Read from cron's integration target (cron_file entries, markers, absent removing the file,
// disabled, special_time, env variables, jobs without a marker) and written as our own cases.
export const cases: CompareCase[] = [
  { name: 'new entry in a cron_file', tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, minute: 0, hour: 3, job: /usr/bin/backup }` },
  { name: 'entry Ansible wrote is found', setup: (d) => writeFileSync(`${d}/jobs`, JOB), tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, minute: 0, hour: 3, job: /usr/bin/backup }` },
  { name: 'schedule changed in place', setup: (d) => writeFileSync(`${d}/jobs`, JOB + '#Ansible: other\n* * * * * root true\n'), tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, minute: 30, hour: 3, job: /usr/bin/backup }` },
  { name: 'absent removes the entry Ansible wrote', setup: (d) => writeFileSync(`${d}/jobs`, JOB + '#Ansible: other\n* * * * * root true\n'), tasks: `- cron: { name: backup, cron_file: $D/jobs, state: absent }` },
  { name: 'absent of the last entry removes the file', setup: (d) => writeFileSync(`${d}/jobs`, JOB), tasks: `- cron: { name: backup, cron_file: $D/jobs, state: absent }` },
  { name: 'job line without a marker is adopted', setup: (d) => writeFileSync(`${d}/jobs`, '0 3 * * * root /usr/bin/backup\n'), tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, minute: 0, hour: 3, job: /usr/bin/backup }` },
  { name: 'disabled', tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, special_time: daily, job: /usr/bin/backup, disabled: true }` },
  { name: 'env variable', setup: (d) => writeFileSync(`${d}/jobs`, JOB), tasks: `- cron: { name: MAILTO, env: true, job: ops@example.org, cron_file: $D/jobs, user: root }` },
  { name: 'env variable after another', setup: (d) => writeFileSync(`${d}/jobs`, 'PATH="/bin"\n' + JOB), tasks: `- cron: { name: MAILTO, env: true, job: root, insertafter: PATH, cron_file: $D/jobs, user: root }` },
  { name: 'missing final newline is added', setup: (d) => writeFileSync(`${d}/jobs`, JOB.trimEnd()), tasks: `- cron: { name: backup, cron_file: $D/jobs, user: root, minute: 0, hour: 3, job: /usr/bin/backup }` },
  { name: 'existing group-writable file keeps its mode', setup: (d) => writeFileSync(`${d}/jobs`, JOB, { mode: 0o664 }), tasks: `- cron: { name: second, cron_file: $D/jobs, user: root, job: /bin/true }` },
  { name: 'two entries, two tasks', tasks: `- cron: { name: a, cron_file: $D/jobs, user: root, job: /bin/a }\n- cron: { name: b, cron_file: $D/jobs, user: root, job: /bin/b, weekday: 1 }` },
];
