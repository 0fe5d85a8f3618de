export { createLab, destroyLab, readLab, listLabs, pruneStaleLabs, stopLabHost, startLabHost, LAB_ADMIN_USER } from './lab.js';
export type { Lab, LabHost, LabEnv } from './lab.js';
export type { LabOptions, LabInit, LabHostSpec } from './options.js';
export { LAB_HOST_PACKAGES } from './packages.js';
export { DEFAULT_LAB_ROOT, labLayout, bridgeName } from './layout.js';
export { createSandboxLab, writeSandboxInventory, loginArgs, inventoryFile, studentKeyFile, SANDBOX_HOSTS, SANDBOX_STUDENTS } from './sandbox.js';
