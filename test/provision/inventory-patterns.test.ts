import test from 'ava';
import { fileURLToPath } from 'node:url';
import { InventoryError, getHost, loadInventory, parseInventory, selectHosts, splitPattern } from '../../src/provision/inventory/index.js';

// Shaped after the examples of Ansible's "Patterns: targeting hosts and groups".
const inventory = await loadInventory(fileURLToPath(new URL('../fixtures/inventory/patterns/inventory.yaml', import.meta.url)));
const source = inventory.source;

const cases: [string, string[]][] = [
  ['all', ['mail.example.com', 'web1.example.com', 'web2.example.com', 'web3.lab', 'db1.example.com', '192.0.2.10']],
  ['*', ['mail.example.com', 'web1.example.com', 'web2.example.com', 'web3.lab', 'db1.example.com', '192.0.2.10']],
  ['web1.example.com', ['web1.example.com']],
  ['webservers', ['web1.example.com', 'web2.example.com', 'web3.lab']],
  ['ungrouped', ['mail.example.com']],
  ['empty', []],
  ['webservers:dbservers', ['web1.example.com', 'web2.example.com', 'web3.lab', 'db1.example.com']],
  ['dbservers,webservers', ['web1.example.com', 'web2.example.com', 'web3.lab', 'db1.example.com']],
  ['webservers:!staging', ['web1.example.com', 'web3.lab']],
  ['webservers:&staging', ['web2.example.com']],
  ['webservers:dbservers:&staging:!web2.example.com', ['db1.example.com']],
  // Order of evaluation: plain terms, then &, then !, wherever they are written.
  ['!staging:webservers', ['web1.example.com', 'web3.lab']],
  ['&production:dbservers:webservers', ['web1.example.com', 'web3.lab']],
  ['!dbservers', ['mail.example.com', 'web1.example.com', 'web2.example.com', '192.0.2.10']],
  ['*.example.com', ['mail.example.com', 'web1.example.com', 'web2.example.com', 'db1.example.com']],
  ['*.lab', ['web3.lab']],
  ['web*', ['web1.example.com', 'web2.example.com', 'web3.lab']],
  ['db*', ['web3.lab', 'db1.example.com']], // the group dbservers matches too
  ['web[12].*', ['web1.example.com', 'web2.example.com']],
  ['~(web|db).*\\.example\\.com', ['web1.example.com', 'web2.example.com', 'db1.example.com']],
  ['~web', ['web1.example.com', 'web2.example.com', 'web3.lab']],
  ['webservers[0]', ['web1.example.com']],
  ['webservers[-1]', ['web3.lab']],
  ['webservers[0:1]', ['web1.example.com', 'web2.example.com']],
  ['webservers[1:]', ['web2.example.com', 'web3.lab']],
  ['192.0.2.10', ['192.0.2.10']],
  ['192.0.2.*', ['192.0.2.10']],
  ['all:!*.lab', ['mail.example.com', 'web1.example.com', 'web2.example.com', 'db1.example.com', '192.0.2.10']],
  [' webservers , !production ', ['web2.example.com']],
  ['localhost', ['localhost']],
  ['webservers:127.0.0.1', ['web1.example.com', 'web2.example.com', 'web3.lab', '127.0.0.1']],
  ['::1', ['::1']],
];

for (const [pattern, expected] of cases) {
  test(`pattern ${JSON.stringify(pattern)}`, (t) => {
    t.deepEqual(selectHosts(inventory, pattern), expected);
  });
}

test('a term that matches nothing is an error naming it', (t) => {
  for (const [pattern, name] of [
    ['webservrs', 'webservrs'],
    ['webservers:!nosuch', 'nosuch'],
    ['all:&nosuch', 'nosuch'],
    ['*.nowhere', '*.nowhere'],
    ['~^zzz', '~^zzz'],
  ] as const) {
    const err = t.throws(() => selectHosts(inventory, pattern), { instanceOf: InventoryError });
    t.is(err!.code, 'E_INVENTORY');
    t.is(err!.message, `${source}: Could not match supplied host pattern: "${name}" names no host or group`);
  }
});

test('a colon inside a comma-separated pattern is part of the term, as in Ansible; the error says so', (t) => {
  t.throws(() => selectHosts(inventory, 'webservers:&staging,db1.example.com'), {
    message: `${source}: Could not match supplied host pattern: "webservers:&staging" names no host or group (in a pattern with commas, ":" does not separate terms)`,
  });
});

test('bad regexes and out-of-range subscripts are errors', (t) => {
  t.throws(() => selectHosts(inventory, '~web('), { message: /invalid regular expression in host pattern "~web\("/ });
  t.throws(() => selectHosts(inventory, 'webservers[7]'), { message: /No hosts matched the subscripted pattern "webservers\[7\]"/ });
});

test('the implicit localhost is reachable by name only, and getHost returns it', (t) => {
  t.false(selectHosts(inventory, 'all').includes('localhost'));
  const host = getHost(inventory, 'localhost');
  t.true(host.implicit);
  t.is(host.connection.kind, 'local');
  t.is(getHost(inventory, 'web3.lab').name, 'web3.lab');
  t.throws(() => getHost(inventory, 'nope'), { instanceOf: InventoryError });
});

test('a localhost name in the inventory stands for the other localhost names too', (t) => {
  const inv = parseInventory('all:\n  hosts:\n    127.0.0.1:\n', { source: 'l.yaml', baseDir: '/' });
  t.deepEqual(selectHosts(inv, 'localhost'), ['127.0.0.1']);
});

test('splitPattern: commas first, otherwise colons outside brackets; IPv6 stays whole', (t) => {
  t.deepEqual(splitPattern('a:b:&c:!d'), ['a', 'b', '&c', '!d']);
  t.deepEqual(splitPattern('a,b:c'), ['a', 'b:c']);
  t.deepEqual(splitPattern('web[0:2]:db'), ['web[0:2]', 'db']);
  t.deepEqual(splitPattern('2001:db8::1'), ['2001:db8::1']);
  t.deepEqual(splitPattern(''), []);
});

test('an empty pattern is an error, not "all" (an unset variable in --limit must not target every host)', (t) => {
  t.throws(() => selectHosts(inventory, ''), { message: `${source}: empty host pattern` });
  t.throws(() => selectHosts(inventory, ' , '), { message: `${source}: empty host pattern` });
});
