// `ipckit ls` sections for shared memory: POSIX objects (files in /dev/shm)
// and System V segments (/proc/sysvipc/shm), as shm.list() and
// shm.sysv.list() give them.
import { list as posixList, SHM_DIR } from '../shm/shm.js';
import { list as sysvList } from '../shm/shm-sysv.js';
import { sysvRow, type LsProvider, type LsRow } from './ls.js';
import { iso, userName } from './users.js';

export const posixShmProvider: LsProvider = {
  kind: 'posix-shm',
  title: `POSIX shared memory (${SHM_DIR})`,
  countName: 'attaches',
  list(): LsRow[] {
    return posixList().map((e) => ({
      kind: 'posix-shm',
      name: e.name,
      owner: userName(e.uid),
      uid: e.uid,
      mode: e.mode,
      size: e.size,
      count: e.attaches,
      // The kernel does not record who created a POSIX object.
      cpid: null,
      extra: { gid: e.gid, ino: e.ino, mtime: e.mtime.toISOString() },
    }));
  },
  notes() {
    return process.getuid?.() === 0 ? [] : ["attach counts include only processes whose /proc/PID/maps you may read (run as root for all)"];
  },
};

export const sysvShmProvider: LsProvider = {
  kind: 'sysv-shm',
  title: 'System V shared memory',
  countName: 'attaches',
  list(): LsRow[] {
    return sysvList().map(
      (s): LsRow => ({
        ...sysvRow('sysv-shm', s),
        size: s.size,
        count: s.nattch,
        cpid: s.cpid,
        extra: {
          lpid: s.lpid,
          gid: s.gid,
          cuid: s.cuid,
          cgid: s.cgid,
          atime: iso(s.atime),
          dtime: iso(s.dtime),
          ctime: iso(s.ctime),
          markedForRemoval: s.markedForRemoval,
          locked: s.locked,
          rss: s.rss,
          swap: s.swap,
        },
      }),
    );
  },
};
