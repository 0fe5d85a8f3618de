import test from 'ava';
import { evaluateCondition } from '../../src/provision/conditions.js';

const vars = { driver: 'lxc', port: 8080, on: true, off: false, flag: 'yes', list: ['a', 'b'], group_names: ['hypervisors'], os: { family: 'debian' }, empty: [] };
const cases: Array<[string | boolean, boolean]> = [
  [true, true],
  ["driver == 'lxc'", true],
  ['driver != "lxc"', false],
  ['port > 1024 and port <= 8080', true],
  ['not on', false],
  ['off or on', true],
  ["'hypervisors' in group_names", true],
  ["'gateways' not in group_names", true],
  ['os.family == "debian"', true],
  ['missing is defined', false],
  ['missing is not defined', true],
  ['driver is defined and (port == 8080 or off)', true],
  ['flag | bool', true],
  ['list | length == 2', true],
  ['empty', false],
  ["driver in ['lxc', 'openvz']", true],
  ['{{ on }}', true],
];
for (const [expr, want] of cases) test(`when: ${String(expr)}`, (t) => t.is(evaluateCondition(expr, vars), want));

test('an undefined variable is an error naming it', (t) => {
  t.throws(() => evaluateCondition('nope == 1', vars), { message: /when: "nope == 1": variable "nope" is not defined/ });
});
test('syntax errors name the expression', (t) => {
  t.throws(() => evaluateCondition("driver == 'lxc", vars), { message: /unterminated string/ });
  t.throws(() => evaluateCondition('driver ==', vars), { message: /unexpected end/ });
  t.throws(() => evaluateCondition('a is odd', vars), { message: /unknown test/ });
});
