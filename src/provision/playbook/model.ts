/** A playbook after loading and validation: the runner trusts these types. */
export interface Task {
  /** Display name: the task's `name`, else "<module> <first arg>". */
  name: string;
  module: string;
  /** Raw arguments, templated per host before validation by the operation's schema. */
  args: unknown;
  tags: string[];
  when: Array<string | boolean>;
  notify: string[];
  loop: unknown;
  loopVar: string;
  ignoreErrors: boolean;
  become: boolean | undefined;
  register: string | undefined;
  /** changed_when / failed_when as conditions, decided after the task ran (see registered.ts). */
  changedWhen?: string | boolean;
  failedWhen?: string | boolean;
  /** Where it was written, for error messages: "playbooks/site.yaml:12". */
  file: string;
  line: number;
}

export interface Play {
  name: string;
  hosts: string;
  become: boolean | undefined;
  becomeUser: string | undefined;
  /** Lowest precedence: like role defaults, any inventory variable overrides them. */
  defaults: Record<string, unknown>;
  /** Above inventory variables, as Ansible's play vars. */
  vars: Record<string, unknown>;
  serial: number | string | undefined;
  maxFailPercentage: number | undefined;
  tags: string[];
  tasks: Task[];
  handlers: Task[];
  /** Directory of the file that holds the play: relative template and copy paths start here. */
  dir: string;
  file: string;
  line: number;
}

export interface Playbook {
  file: string;
  plays: Play[];
}
