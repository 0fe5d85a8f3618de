import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import type { LabHost } from '../../src/lab/index.js';
import type { HostSummary, Reporter, TaskEvent } from '../../src/provision/runner.js';

/** An inventory file for lab hosts (group -> hosts), written to a fresh temp dir. */
export function labInventory(groups: Record<string, LabHost[]>, vars: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'vzsb-inv-'));
  const children: Record<string, unknown> = {};
  for (const [group, hosts] of Object.entries(groups)) {
    children[group] = {
      hosts: Object.fromEntries(
        hosts.map((h) => [h.name, { ansible_host: h.address, ansible_port: h.port, ansible_user: h.user, ansible_ssh_private_key_file: h.keyFile }]),
      ),
    };
  }
  const file = join(dir, 'inventory.yaml');
  writeFileSync(file, stringify({ all: { vars, children } }));
  return file;
}

/** A reporter that keeps everything for assertions. */
export function collectingReporter() {
  const tasks: TaskEvent[] = [];
  const hosts: HostSummary[] = [];
  const reporter: Reporter = {
    runStart() {},
    hostStart() {},
    task: (e) => void tasks.push(e),
    hostEnd: (s) => void hosts.push(s),
    runEnd() {},
  };
  return {
    reporter,
    tasks,
    hosts,
    changed: (host: string) => tasks.filter((t) => t.host === host && t.status === 'changed').map((t) => t.task).sort(),
  };
}
