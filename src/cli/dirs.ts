// Directory listings the `ls` providers share.
import { readdirSync } from 'node:fs';

/** The names in `dir`, or none when it does not exist (e.g. /dev/mqueue not mounted); other errors throw. */
export function entriesIfPresent(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** The process ids in /proc now (as strings); none if /proc cannot be read. */
export function processIds(): string[] {
  try {
    return readdirSync('/proc').filter((d) => /^\d+$/.test(d));
  } catch {
    return [];
  }
}
