// Where a trial may leave things, and how to remove them whatever happened:
// its private directory and every POSIX IPC name carrying its prefix.
import { readdirSync, rmSync } from 'node:fs';
import type { TrialParams } from './types.js';

const POSIX_DIRS = ['/dev/shm', '/dev/mqueue'];

/** Removes the trial's directory and POSIX objects (shm, named semaphores, queues) named with its prefix. */
export function sweepTrial(params: Pick<TrialParams, 'workDir' | 'namePrefix'>): void {
  rmSync(params.workDir, { recursive: true, force: true });
  const prefixes = [params.namePrefix, `sem.${params.namePrefix}`];
  for (const dir of POSIX_DIRS) {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (prefixes.some((p) => name.startsWith(p))) rmSync(`${dir}/${name}`, { force: true });
    }
  }
}
