import { open, readFile, rename, unlink, writeFile } from 'node:fs/promises';

/**
 * Grant root a subordinate uid/gid range for unprivileged LXC containers in a test, and take
 * it back afterwards. Edits /etc/subuid and /etc/subgid under shadow's own lock file
 * (<file>.lock, which useradd/usermod honour), by rename, so a user added by another test at
 * the same time is neither lost nor half-written. (usermod --del-subuids refuses for root
 * while root has processes.)
 */
export async function grantRootSubIds(start: number, count: number): Promise<() => Promise<void>> {
  const line = `root:${start}:${count}`;
  const added: string[] = [];
  for (const file of ['/etc/subuid', '/etc/subgid']) {
    await edit(file, (lines) => {
      if (lines.includes(line)) return lines;
      added.push(file);
      return [...lines, line];
    });
  }
  return async () => {
    for (const file of added) await edit(file, (lines) => lines.filter((l) => l !== line));
  };
}

async function edit(file: string, change: (lines: string[]) => string[]): Promise<void> {
  const lock = `${file}.lock`;
  for (let attempt = 1; ; attempt++) {
    try {
      const handle = await open(lock, 'wx');
      await handle.writeFile(String(process.pid));
      await handle.close();
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || attempt >= 100) throw new Error(`cannot lock ${file}: ${(e as Error).message}`);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
  }
  try {
    const lines = (await readFile(file, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
    const next = change(lines);
    if (next === lines) return;
    await writeFile(`${file}.vzsb-tmp`, next.map((l) => l + '\n').join(''), { mode: 0o644 });
    await rename(`${file}.vzsb-tmp`, file);
  } finally {
    await unlink(lock);
  }
}
