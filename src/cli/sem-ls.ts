// `ipckit ls` sections for semaphores: POSIX named semaphores (glibc keeps
// them as /dev/shm/sem.NAME) and System V sets (/proc/sysvipc/sem) with
// their values, as sem.list() and sem.sysv.list() give them.
import { list as posixList } from '../sync/sem.js';
import { list as sysvList } from '../sync/sem-sysv.js';
import { sysvRow, type LsProvider, type LsRow } from './ls.js';
import { iso, userName } from './users.js';

export const posixSemProvider: LsProvider = {
  kind: 'posix-sem',
  title: 'POSIX named semaphores (/dev/shm/sem.*)',
  countName: 'value',
  list(): LsRow[] {
    return posixList().map((e) => ({
      kind: 'posix-sem',
      name: e.name,
      owner: userName(e.uid),
      uid: e.uid,
      mode: e.mode,
      count: e.value,
      // The kernel does not record who created a POSIX object.
      cpid: null,
      extra: { gid: e.gid, ino: e.ino, mtime: e.mtime.toISOString() },
    }));
  },
};

export const sysvSemProvider: LsProvider = {
  kind: 'sysv-sem',
  title: 'System V semaphore sets',
  countName: 'semaphores',
  detailName: 'values',
  list(): LsRow[] {
    return sysvList().map(
      (s): LsRow => ({
        ...sysvRow('sysv-sem', s),
        count: s.count,
        detail: s.values ? s.values.join(' ') : '?',
        gauge: s.values ? s.values.reduce((a, b) => a + b, 0) : null,
        extra: { values: s.values, gid: s.gid, cuid: s.cuid, cgid: s.cgid, otime: iso(s.otime), ctime: iso(s.ctime) },
      }),
    );
  },
};
