export type { ConnectionSpec, Inventory, InventoryGroup, InventoryHost, ParseOptions, VarOrigin, VarsFile } from './types.js';
export { InventoryError, InventoryErrors } from './errors.js';
export { parseInventory, compareGroups, LOCALHOST_NAMES } from './parse.js';
export { loadInventory } from './load.js';
export { selectHosts, getHost, groupHosts, splitPattern } from './patterns.js';
export { expandHostRange } from './host-range.js';
export { parseBool } from './connection.js';
export { ansibleJson, inventoryGraph, inventoryList } from './render.js';
