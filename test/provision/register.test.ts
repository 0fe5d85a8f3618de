import test from 'ava';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { deploy } from '../../src/provision/deploy.js';
import { collectingReporter } from '../helpers/deploy.js';

// register: values read by later when / changed_when / failed_when, on this machine through the
// local connection. What planning knows needs no extra round trip; what only running tells
// (stdout, rc) splits the plan there.
function setup(tasks: string) {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-register-'));
  writeFileSync(join(dir, 'inventory.yaml'), `all:\n  hosts:\n    h1: { ansible_connection: local, d: ${dir} }\n`);
  writeFileSync(join(dir, 'pb.yaml'), `- hosts: all\n  tasks:\n${tasks.replace(/^/gm, '    ')}\n`);
  return { dir, run: async (check = false) => {
    const r = collectingReporter();
    const result = await deploy({ inventory: join(dir, 'inventory.yaml'), playbook: join(dir, 'pb.yaml'), reporter: r.reporter, check });
    return { statuses: r.tasks.map((e) => `${e.task}:${e.status}`), roundTrips: result.hosts[0]!.stats.roundTrips, exitCode: result.exitCode, error: result.hosts[0]!.error };
  } };
}

test('results known from planning: changed, skipped, ok decide later conditions without an extra round trip', async (t) => {
  const s = setup(`- name: conf
  copy: { dest: "{{d}}/conf", content: "a\\n" }
  register: conf
- name: skipped
  copy: { dest: "{{d}}/never", content: "x" }
  when: false
  register: never
- name: after a change
  copy: { dest: "{{d}}/changed", content: "x" }
  when: conf is changed
- name: after a skip
  copy: { dest: "{{d}}/was-skipped", content: "x" }
  when: never is skipped and not (conf is failed)
`);
  const first = await s.run();
  t.deepEqual(first.statuses, ['conf:changed', 'skipped:skipped', 'after a change:changed', 'after a skip:changed']);
  t.is(first.roundTrips, 2, 'facts and one apply');
  const again = await s.run();
  t.deepEqual(again.statuses, ['conf:ok', 'skipped:skipped', 'after a change:skipped', 'after a skip:ok']);
  t.is(again.roundTrips, 1, 'a no-op run: the facts round trip only');
});

test('stdout and rc of a command split the plan there; changed_when and failed_when conditions read the result', async (t) => {
  const s = setup(`- name: probe
  command: echo hello
  register: out
  changed_when: false
- name: when stdout says so
  copy: { dest: "{{d}}/hello", content: "x" }
  when: "'hello' in out.stdout and out.rc == 0"
- name: when it does not
  copy: { dest: "{{d}}/bye", content: "x" }
  when: "'bye' in out.stdout"
- name: exit 3 is fine here
  shell: exit 3
  register: three
  failed_when: three.rc not in [0, 3]
  changed_when: three.rc == 0
- name: after exit 3
  copy: { dest: "{{d}}/three", content: "x" }
  when: three.rc == 3
`);
  const r = await s.run();
  t.deepEqual(r.statuses, ['probe:ok', 'when stdout says so:changed', 'when it does not:skipped', 'exit 3 is fine here:ok', 'after exit 3:changed']);
  t.true(existsSync(join(s.dir, 'hello')) && existsSync(join(s.dir, 'three')) && !existsSync(join(s.dir, 'bye')));
  t.is(r.roundTrips, 4, 'facts, the probe, the failed_when step, the rest');
  t.is(r.exitCode, 0);
});

test('failed_when true fails the task and stops the host; a condition on a result check mode cannot know skips', async (t) => {
  const s = setup(`- name: probe
  command: echo ok
  register: out
  failed_when: "'ok' in out.stdout"
- name: never reached
  copy: { dest: "{{d}}/no", content: "x" }
`);
  const r = await s.run();
  t.deepEqual(r.statuses, ['probe:failed']);
  t.regex(r.error ?? '', /failed_when/);
  t.false(existsSync(join(s.dir, 'no')));

  const c = setup(`- command: echo hi
  register: out
- name: depends
  copy: { dest: "{{d}}/x", content: "x" }
  when: "'hi' in out.stdout"
`);
  const check = await c.run(true);
  t.deepEqual(check.statuses, ['command echo hi:skipped', 'depends:skipped']);
  t.false(existsSync(join(c.dir, 'x')));
  void readFileSync;
});

test('a registered value in task arguments is refused before anything runs', async (t) => {
  const s = setup(`- command: echo hi
  register: out
- copy: { dest: "{{d}}/x", content: "{{out.stdout}}" }
`);
  const r = await s.run();
  t.regex(r.error ?? '', /registered values \(out\) in when, changed_when and failed_when only/);
  t.is(r.roundTrips, 0);
});
