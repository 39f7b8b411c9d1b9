// tsc writes a new file with the umask's mode (0644 here): the `ipckit`
// command (package.json "bin") must be executable to run through a link or
// by its path, as an installed package's is.
import { chmodSync } from 'node:fs';

chmodSync(new URL('../dist/cli/main.js', import.meta.url), 0o755);
