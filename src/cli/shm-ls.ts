// `ipckit ls` sections for shared memory: POSIX objects (files in /dev/shm)
// and System V segments (/proc/sysvipc/shm).
import { lstatSync, readFileSync } from 'node:fs';
import { formatKey } from '../errors.js';
import { readSysvTable } from '../sysv-key.js';
import { native } from '../native.js';
import type { LsProvider, LsRow } from './ls.js';
import { userName } from './users.js';
import { entriesIfPresent, processIds } from './dirs.js';

const SHM_DIR = '/dev/shm';

/**
 * For every /dev/shm file some process maps, the set of pids mapping it,
 * keyed by inode (so a mapping of an unlinked-and-recreated name is not
 * counted for the new object). Processes whose maps we may not read (other
 * users' when not root, or gone meanwhile) are skipped.
 */
function shmMappers(): Map<number, Set<number>> {
  const byInode = new Map<number, Set<number>>();
  for (const pid of processIds()) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch {
      continue;
    }
    if (!maps.includes(`${SHM_DIR}/`)) continue;
    for (const line of maps.split('\n')) {
      // address perms offset dev inode path
      const m = /^\S+\s+\S+\s+\S+\s+\S+\s+(\d+)\s+\/dev\/shm\//.exec(line);
      if (!m) continue;
      const ino = Number(m[1]);
      let set = byInode.get(ino);
      if (!set) byInode.set(ino, (set = new Set()));
      set.add(Number(pid));
    }
  }
  return byInode;
}

export const posixShmProvider: LsProvider = {
  kind: 'posix-shm',
  title: `POSIX shared memory (${SHM_DIR})`,
  countName: 'attaches',
  list(): LsRow[] {
    const names = entriesIfPresent(SHM_DIR);
    const rows: LsRow[] = [];
    const inodes: number[] = [];
    // sem.NAME files are POSIX named semaphores: a section of their own.
    for (const file of names.filter((n) => !n.startsWith('sem.')).sort()) {
      let st;
      try {
        st = lstatSync(`${SHM_DIR}/${file}`);
      } catch {
        continue; // unlinked while we looked
      }
      if (!st.isFile()) continue;
      inodes.push(st.ino);
      rows.push({
        kind: 'posix-shm',
        name: `/${file}`,
        owner: userName(st.uid),
        uid: st.uid,
        mode: st.mode & 0o7777,
        size: st.size,
        count: 0,
        // The kernel does not record who created a POSIX object.
        cpid: null,
        extra: { gid: st.gid, ino: st.ino, mtime: st.mtime.toISOString() },
      });
    }
    if (rows.length > 0) {
      const mappers = shmMappers();
      rows.forEach((row, i) => (row.count = mappers.get(inodes[i]!)?.size ?? 0));
    }
    return rows;
  },
  notes() {
    return process.getuid?.() === 0 ? [] : ["attach counts include only processes whose /proc/PID/maps you may read (run as root for all)"];
  },
};

const date = (s: number): string | null => (s === 0 ? null : new Date(s * 1000).toISOString());

export const sysvShmProvider: LsProvider = {
  kind: 'sysv-shm',
  title: 'System V shared memory',
  countName: 'attaches',
  list(): LsRow[] {
    const rows = readSysvTable('shm', ['key', 'shmid', 'size', 'cpid', 'lpid', 'nattch', 'uid', 'gid', 'cuid', 'cgid', 'atime', 'dtime', 'ctime']);
    return rows
      .map(({ num, optional, perms: permsColumn }): LsRow => {
        const key = num('key');
        const id = num('shmid');
        const perms = permsColumn();
        const uid = num('uid');
        return {
          kind: 'sysv-shm',
          // IPC_PRIVATE segments (and removed ones, whose key the kernel clears) can only be named by id.
          name: key === 0 ? `id:${id}` : formatKey(key),
          key: formatKey(key),
          id,
          owner: userName(uid),
          uid,
          mode: perms & 0o777,
          size: num('size'),
          count: num('nattch'),
          cpid: num('cpid'),
          extra: {
            lpid: num('lpid'),
            gid: num('gid'),
            cuid: num('cuid'),
            cgid: num('cgid'),
            atime: date(num('atime')),
            dtime: date(num('dtime')),
            ctime: date(num('ctime')),
            markedForRemoval: (perms & native.sysvConstants.SHM_DEST) !== 0,
            locked: (perms & native.sysvConstants.SHM_LOCKED) !== 0,
            rss: optional('rss'),
            swap: optional('swap'),
          },
        };
      })
      .sort((a, b) => a.id! - b.id!);
  },
};
