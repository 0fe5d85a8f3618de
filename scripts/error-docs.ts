/**
 * The error code lists of the docs, generated from src/common/error-catalog.ts: docs/errors.md
 * (every code) and the student table of docs/gateway.md (between its markers).
 *   node --import tsx scripts/error-docs.ts          write them (npm run docs:errors)
 *   node --import tsx scripts/error-docs.ts --check  exit 1 when they differ from the catalog
 * test/common/error-catalog.test.ts fails when they are out of date.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ERROR_CATALOG, type Area, type Daemon, type ErrorCode, type ErrorEntry, type HttpAnswer } from '../src/common/error-catalog.js';

const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const ERRORS_DOC = 'docs/errors.md';
export const GATEWAY_DOC = 'docs/gateway.md';
const BEGIN = '<!-- student codes: generated from src/common/error-catalog.ts by `npm run docs:errors` -->';
const END = '<!-- end of student codes -->';

const AREAS: Record<Area, string> = {
  api: "Every daemon's HTTP API",
  hypervisor: 'Hypervisor',
  balancer: 'Balancer',
  gateway: "Gateway (a student's login)",
  driver: 'Container drivers',
  deploy: 'Deploying',
  lab: 'Labs',
  cli: 'Instructor commands',
};

const CLIENT: Record<Daemon, string> = { hypervisor: 'the balancer', balancer: 'the gateway' };

const codes = (): [ErrorCode, ErrorEntry][] => Object.entries(ERROR_CATALOG) as [ErrorCode, ErrorEntry][];

/** Markdown table cells may not hold a bare `|` or a line break. */
const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function retryText(daemon: Daemon, answer: HttpAnswer): string {
  if (answer.retry === 'elsewhere') return `${CLIENT[daemon]} tries another ${daemon}`;
  if (answer.retry === 'wait') return `${CLIENT[daemon]} asks again (Retry-After: 1)`;
  return `final${answer.gatewayCode ? `; the gateway reports ${answer.gatewayCode}` : ''}`;
}

function httpText(entry: ErrorEntry): string {
  const { hypervisor: h, balancer: b } = entry;
  if (h && b && h.status === b.status && h.retry === 'no' && b.retry === 'no' && !b.gatewayCode) return `${h.status}: final`;
  const parts: string[] = [];
  for (const daemon of ['hypervisor', 'balancer'] as const) {
    const answer = entry[daemon];
    if (answer) parts.push(`${daemon} ${answer.status}: ${retryText(daemon, answer)}`);
  }
  return parts.join('; ');
}

export function renderErrorsDoc(): string {
  let out = `# Error codes

<!-- Generated from src/common/error-catalog.ts by \`npm run docs:errors\`; edit the catalog, not this file. -->

Every error vzsandbox raises has a stable code: daemons answer it in \`{"error": {"code", "message"}}\`
bodies, the logs and reports name it, and a student's failed login ends with it in brackets. Each
code is written once, in \`src/common/error-catalog.ts\`: what it means, the HTTP status each daemon
answers it with, and whether the client that got it should try another server of the same kind
(the balancer another hypervisor, the gateway another balancer), wait and ask again, or stop. An
answer whose code a client does not know (a daemon of another version) goes by its status: the
balancer tries another hypervisor after a 5xx, 401 or 403; the gateway tries another balancer
after a 5xx, 404, 408 or 429. The student's sentence is what the gateway prints, as
\`vzsb: <sentence> [CODE]\`.
`;
  const configuration = codes().filter(([, e]) => e.configuration).map(([c]) => `\`${c}\``);
  out += `\nA daemon, the session agent or an instructor command that stops on a configuration error (${configuration.join(', ')}) exits with 1; on any other error that stops it, with 3.\n`;
  for (const area of Object.keys(AREAS) as Area[]) {
    const rows = codes().filter(([, e]) => e.area === area);
    if (rows.length === 0) continue;
    const http = rows.some(([, e]) => e.hypervisor || e.balancer);
    const student = rows.some(([, e]) => e.student);
    out += `\n## ${AREAS[area]}\n\n`;
    out += `| code |${http ? ' HTTP |' : ''}${student ? ' the student sees |' : ''} meaning |\n`;
    out += `| --- |${http ? ' --- |' : ''}${student ? ' --- |' : ''} --- |\n`;
    for (const [code, e] of rows) {
      out += `| \`${code}\` |${http ? ` ${cell(httpText(e))} |` : ''}${student ? ` ${cell(e.student ?? '')} |` : ''} ${cell(e.admin)} |\n`;
    }
  }
  return out;
}

/** The table of docs/gateway.md: every code a login can end with. */
export function renderStudentTable(): string {
  let out = `${BEGIN}\n| code | the student sees | meaning |\n| --- | --- | --- |\n`;
  for (const [code, e] of codes()) if (e.student) out += `| \`${code}\` | ${cell(e.student)} | ${cell(e.admin)} |\n`;
  return out + END;
}

/** `text` (docs/gateway.md) with its generated section replaced by the catalog's. */
export function withStudentTable(text: string): string {
  const begin = text.indexOf(BEGIN);
  const end = text.indexOf(END);
  if (begin < 0 || end < begin) throw new Error(`${GATEWAY_DOC}: the student code markers are missing`);
  return text.slice(0, begin) + renderStudentTable() + text.slice(end + END.length);
}

/** What each generated file should hold, by path from the repository root. */
export function expectedDocs(root = ROOT): Record<string, string> {
  return {
    [ERRORS_DOC]: renderErrorsDoc(),
    [GATEWAY_DOC]: withStudentTable(readFileSync(root + GATEWAY_DOC, 'utf8')),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  let stale = 0;
  for (const [path, text] of Object.entries(expectedDocs())) {
    let current = '';
    try {
      current = readFileSync(ROOT + path, 'utf8');
    } catch {
      // a missing file is out of date
    }
    if (current === text) continue;
    stale++;
    if (check) process.stderr.write(`${path} is out of date with src/common/error-catalog.ts: run npm run docs:errors\n`);
    else writeFileSync(ROOT + path, text);
  }
  process.exitCode = check && stale > 0 ? 1 : 0;
}
