import type { Argv, CommandModule } from 'yargs';
import { VzsbError } from '../../common/errors.js';

interface InventoryArgs {
  inventory: string;
  list?: boolean;
  host?: string;
  graph?: string;
  limit?: string;
  exitCode?: number;
}

/** `vzsb inventory`: what `ansible-inventory` prints, from the same YAML inventory. */
export const inventoryCommand: CommandModule<object, InventoryArgs> = {
  command: 'inventory <inventory>',
  describe: 'Show an Ansible-style YAML inventory as vzsb reads it (like ansible-inventory)',
  builder: (yargs: Argv<object>) =>
    yargs
      .positional('inventory', { type: 'string', demandOption: true, describe: 'YAML inventory file (group_vars/ and host_vars/ beside it are read too)' })
      .option('list', { type: 'boolean', describe: 'Print every group and host with merged variables, as JSON (ansible-inventory --list)' })
      .option('host', { type: 'string', describe: "Print one host's merged variables as JSON" })
      .option('graph', { type: 'string', describe: 'Print the group tree from GROUP (default all)' })
      .option('limit', { alias: 'l', type: 'string', describe: 'Only hosts matching this Ansible host pattern (web*, hypervisors:&lab, !gateways, ~regex)' })
      .check((argv) => {
        const modes = [argv.list, argv.host !== undefined, argv.graph !== undefined].filter(Boolean).length;
        if (modes !== 1) throw new Error('Choose exactly one of --list, --host NAME, --graph [GROUP].');
        return true;
      })
      .example('$0 inventory inventory.yaml --list', 'every group and host with merged variables')
      .example('$0 inventory inventory.yaml --list --limit hypervisors', 'only the hypervisors')
      .example('$0 inventory inventory.yaml --host hyp01', 'the variables hyp01 ends up with')
      .example('$0 inventory inventory.yaml --graph', 'the group tree with its hosts')
      .example("$0 inventory inventory.yaml --graph --limit 'all:!gateways'", 'the tree without the gateways') as unknown as Argv<InventoryArgs>,
  handler: async (argv) => {
    const { ansibleJson, inventoryGraph, inventoryList, loadInventory, selectHosts } = await import('../../provision/inventory/index.js');
    const inventory = await loadInventory(argv.inventory);
    for (const warning of inventory.warnings) process.stderr.write(`vzsb: warning: ${warning}\n`);
    const selected = argv.limit !== undefined ? selectHosts(inventory, argv.limit) : undefined;
    if (selected && selected.length === 0) process.stderr.write(`vzsb: warning: --limit ${argv.limit} selects no host\n`);
    let out: string;
    if (argv.host !== undefined) {
      const name = argv.host;
      const host = inventory.hosts.get(name) ?? inventory.implicitHosts.get(name);
      if (!host) throw new VzsbError('E_INVENTORY', `${inventory.source}: no host "${name}" in the inventory`);
      if (selected && !selected.includes(name)) throw new VzsbError('E_INVENTORY', `host "${name}" is not in --limit ${argv.limit}`);
      out = ansibleJson(host.vars);
    } else if (argv.graph !== undefined) {
      const top = argv.graph || 'all';
      if (!inventory.groups.has(top)) throw new VzsbError('E_INVENTORY', `${inventory.source}: --graph needs a group name; no group "${top}"`);
      out = inventoryGraph(inventory, top, selected);
    } else {
      out = ansibleJson(inventoryList(inventory, selected));
    }
    process.stdout.write(out + '\n');
    argv.exitCode = 0;
  },
};
