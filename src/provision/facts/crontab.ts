import { quote } from '../shell.js';
import { parsePresentBase64 } from './file.js';
import type { FactModule } from '../types.js';

/** A user's crontab as `crontab -l` prints it (bytes), or null when the user has none. */
export const crontabFact: FactModule<Buffer | null> = {
  name: 'crontab',
  command: (user) =>
    `( t=$(mktemp) || exit 0; if crontab -u ${quote(user)} -l > "$t" 2>/dev/null </dev/null; then echo present; base64 -w0 < "$t"; else echo absent; fi; rm -f "$t" )`,
  parse: (stdout) => parsePresentBase64(stdout),
};
