import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadPlaybook } from '../../src/provision/playbook/load.js';
import { operations } from '../../src/provision/operations/index.js';

const modules = new Set(operations.keys());
const write = (files: Record<string, string>) => {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-pbt-'));
  for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
  return dir;
};
const load = (dir: string, file = 'pb.yaml') => loadPlaybook(join(dir, file), { modules, cwd: dir });

test('plays, tasks, handlers, tags, when, notify, loops and free-form commands load', async (t) => {
  const dir = write({
    'pb.yaml': `- name: web
  hosts: [web, db]
  become: yes
  serial: "50%"
  max_fail_percentage: 20
  vars: { a: 1 }
  tasks:
    - name: one
      file: { path: /x, state: directory }
      tags: setup
      when: a == 1
      notify: [restart]
    - command: make install chdir=/src creates=/usr/bin/x
    - ansible.builtin.copy: { dest: /y, content: hi }
      loop: [1, 2]
      loop_control: { loop_var: n }
  handlers:
    - name: restart
      command: "true"
`,
  });
  const pb = await load(dir);
  t.is(pb.plays.length, 1);
  const play = pb.plays[0]!;
  t.is(play.hosts, 'web:db');
  t.true(play.become);
  t.is(play.serial, '50%');
  t.is(play.maxFailPercentage, 20);
  t.deepEqual(play.tasks.map((x) => x.module), ['file', 'command', 'copy']);
  t.deepEqual(play.tasks[0]!.tags, ['setup']);
  t.deepEqual(play.tasks[0]!.when, ['a == 1']);
  t.deepEqual(play.tasks[0]!.notify, ['restart']);
  t.is(play.tasks[0]!.line, 8);
  t.deepEqual(play.tasks[1]!.args, { chdir: '/src', creates: '/usr/bin/x', cmd: 'make install' });
  t.is(play.tasks[1]!.name, 'command make install');
  t.deepEqual(play.tasks[2]!.loop, [1, 2]);
  t.is(play.tasks[2]!.loopVar, 'n');
  t.is(play.handlers[0]!.name, 'restart');
});

test('import_playbook follows files and refuses loops', async (t) => {
  const dir = write({
    'site.yaml': '- import_playbook: a.yaml\n- import_playbook: b.yaml\n',
    'a.yaml': '- hosts: a\n  tasks: []\n',
    'b.yaml': '- hosts: b\n  tasks:\n    - command: "true"\n',
    'loop.yaml': '- import_playbook: loop2.yaml\n',
    'loop2.yaml': '- import_playbook: loop.yaml\n',
  });
  const pb = await load(dir, 'site.yaml');
  t.deepEqual(pb.plays.map((p) => p.hosts), ['a', 'b']);
  await t.throwsAsync(load(dir, 'loop.yaml'), { message: /import_playbook loop/ });
});

const bad: Array<[string, string, RegExp]> = [
  ['not a list', 'hosts: all\n', /pb\.yaml:1: \(root\): expected a list of plays/],
  ['unknown module', '- hosts: all\n  tasks:\n    - pakage: { name: x }\n', /pb\.yaml:3: \[0\]\.tasks\[0\]\.pakage: unknown module \(known: .*package/],
  ['two modules', '- hosts: all\n  tasks:\n    - file: { path: /x }\n      copy: { dest: /y }\n', /more than one module/],
  ['missing hosts', '- tasks: []\n', /\[0\]\.hosts: expected a host pattern/],
  ['bad serial', '- hosts: all\n  serial: many\n  tasks: []\n', /\[0\]\.serial: expected a count or a percentage/],
  ['unknown play keyword', '- hosts: all\n  taks: []\n', /pb\.yaml:2: \[0\]\.taks: unknown play keyword/],
  ['tasks not a list', '- hosts: all\n  tasks: { a: 1 }\n', /\[0\]\.tasks: expected a list of tasks/],
  ['duplicate keys', '- hosts: all\n  hosts: web\n', /pb\.yaml:2: .*[Uu]nique/],
  ['yaml syntax', '- hosts: all\n  tasks: [\n', /pb\.yaml:\d+: /],
  ['bad when', '- hosts: all\n  tasks:\n    - command: "true"\n      when: { a: 1 }\n', /when: expected a condition/],
];
for (const [name, text, message] of bad) {
  test(`bad playbook: ${name}`, async (t) => {
    await t.throwsAsync(load(write({ 'pb.yaml': text })), { message });
  });
}

test('a missing playbook names the file', async (t) => {
  await t.throwsAsync(loadPlaybook('/nonexistent/pb.yaml', { modules }), { message: /cannot read playbook .*pb\.yaml: ENOENT/ });
});

test('import_tasks inlines a task file; errors name that file and line', async (t) => {
  const dir = write({
    'pb.yaml': '- hosts: all\n  tasks:\n    - import_tasks: common.yaml\n    - command: "true"\n  handlers:\n    - name: restart service\n      command: "true"\n',
    'common.yaml': '- name: from common\n  file: { path: /x, state: directory }\n  notify: restart service\n',
    'broken.yaml': '- hosts: all\n  tasks:\n    - import_tasks: bad-tasks.yaml\n',
    'bad-tasks.yaml': '- name: fine\n  command: "true"\n- nosuchmodule: {}\n',
  });
  const pb = await load(dir);
  t.deepEqual(pb.plays[0]!.tasks.map((x) => x.name), ['from common', 'command true']);
  t.is(pb.plays[0]!.tasks[0]!.file, 'common.yaml');
  t.is(pb.plays[0]!.tasks[0]!.line, 1);
  await t.throwsAsync(load(dir, 'broken.yaml'), { message: /^bad-tasks\.yaml:3: \[1\]\.nosuchmodule: unknown module/ });
});

test('notifying a handler the play does not have is an error', async (t) => {
  const dir = write({ 'pb.yaml': '- hosts: all\n  tasks:\n    - command: "true"\n      notify: restrat\n  handlers:\n    - name: restart\n      command: "true"\n' });
  await t.throwsAsync(load(dir), { message: /pb\.yaml:3: task "command true" notifies "restrat", which is not a handler of play .* \(handlers: restart\)/ });
});

test('playbooks are YAML 1.1 as in Ansible: leading-zero octal modes, yes/no booleans, merge keys', async (t) => {
  const dir = write({
    'pb.yaml': `- hosts: all
  become: yes
  vars:
    base: &base { owner: root }
    merged: { <<: *base, group: adm }
  tasks:
    - file: { path: /x, state: directory, mode: 0444 }
    - file: { path: /y, state: directory, mode: 0700 }
      ignore_errors: no
    - lineinfile: { path: /z, line: a, create: yes }
`,
  });
  const play = (await load(dir)).plays[0]!;
  t.true(play.become);
  t.deepEqual(play.vars.merged, { owner: 'root', group: 'adm' });
  const [a, b, c] = play.tasks;
  t.is((a!.args as { mode: number }).mode, 0o444);
  t.is((b!.args as { mode: number }).mode, 0o700);
  t.false(b!.ignoreErrors);
  t.is((c!.args as { create: unknown }).create, true);
  // and the mode reaches the operation as the same octal digits
  const { parseInput } = await import('../../src/common/validate.js');
  t.is(parseInput(operations.get('file')!.args, a!.args, 'file').mode, '0444');
  t.is(parseInput(operations.get('file')!.args, b!.args, 'file').mode, '0700');
});
