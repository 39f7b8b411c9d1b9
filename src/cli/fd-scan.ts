// Who holds a file open: walks /proc/PID/fd (readlink) and /proc/PID/fdinfo
// (access mode). Processes we may not inspect (other users' when not root,
// or gone meanwhile) are skipped, so counts are lower bounds for non-root.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { processIds } from './dirs.js';

export interface Holder {
  pid: number;
  /** O_RDONLY (0), O_WRONLY (1) or O_RDWR (2). */
  access: number;
}

/** Every open descriptor whose link target is one of `paths`, grouped by path. */
export function holders(paths: Set<string>): Map<string, Holder[]> {
  const out = new Map<string, Holder[]>();
  if (paths.size === 0) return out;
  for (const pid of processIds()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      let target: string;
      try {
        target = readlinkSync(`/proc/${pid}/fd/${fd}`);
      } catch {
        continue;
      }
      if (!paths.has(target)) continue;
      let access = 0;
      try {
        const m = /^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) access = parseInt(m[1]!, 8) & 3;
      } catch {
        /* gone meanwhile */
      }
      let list = out.get(target);
      if (!list) out.set(target, (list = []));
      list.push({ pid: Number(pid), access });
    }
  }
  return out;
}
