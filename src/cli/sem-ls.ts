// `ipckit ls` sections for semaphores: POSIX named semaphores (glibc keeps
// them as /dev/shm/sem.NAME) and System V sets (/proc/sysvipc/sem) with
// their values.
import { lstatSync } from 'node:fs';
import { formatKey } from '../errors.js';
import { readSysvTable } from '../sysv-key.js';
import { native } from '../native.js';
import * as posix from '../sem.js';
import type { LsProvider, LsRow } from './ls.js';
import { userName } from './users.js';
import { entriesIfPresent } from './dirs.js';

const SHM_DIR = '/dev/shm';
const date = (s: number): string | null => (s === 0 ? null : new Date(s * 1000).toISOString());

/** The value of a named semaphore, or null if we may not open it. */
function posixValue(name: string): number | null {
  try {
    using s = posix.open(name);
    return s.value;
  } catch {
    return null;
  }
}

export const posixSemProvider: LsProvider = {
  kind: 'posix-sem',
  title: `POSIX named semaphores (${SHM_DIR}/sem.*)`,
  countName: 'value',
  list(): LsRow[] {
    const files = entriesIfPresent(SHM_DIR);
    const rows: LsRow[] = [];
    for (const file of files.filter((n) => n.startsWith('sem.') && n.length > 4).sort()) {
      let st;
      try {
        st = lstatSync(`${SHM_DIR}/${file}`);
      } catch {
        continue; // unlinked while we looked
      }
      if (!st.isFile()) continue;
      const name = `/${file.slice(4)}`;
      rows.push({
        kind: 'posix-sem',
        name,
        owner: userName(st.uid),
        uid: st.uid,
        mode: st.mode & 0o7777,
        count: posixValue(name),
        // The kernel does not record who created a POSIX object.
        cpid: null,
        extra: { gid: st.gid, ino: st.ino, mtime: st.mtime.toISOString() },
      });
    }
    return rows;
  },
};

export const sysvSemProvider: LsProvider = {
  kind: 'sysv-sem',
  title: 'System V semaphore sets',
  countName: 'semaphores',
  detailName: 'values',
  list(): LsRow[] {
    const rows = readSysvTable('sem', ['key', 'semid', 'nsems', 'uid', 'gid', 'cuid', 'cgid', 'otime', 'ctime']);
    return rows
      .map(({ num, perms }): LsRow => {
        const key = num('key');
        const id = num('semid');
        const uid = num('uid');
        let values: number[] | null = null;
        try {
          values = native.semctlGetAll(id);
        } catch {
          // No read permission, or removed meanwhile.
        }
        return {
          kind: 'sysv-sem',
          // IPC_PRIVATE sets can only be named by id.
          name: key === 0 ? `id:${id}` : formatKey(key),
          key: formatKey(key),
          id,
          owner: userName(uid),
          uid,
          mode: perms() & 0o777,
          count: num('nsems'),
          detail: values ? values.join(' ') : '?',
          extra: {
            values,
            gid: num('gid'),
            cuid: num('cuid'),
            cgid: num('cgid'),
            otime: date(num('otime')),
            ctime: date(num('ctime')),
          },
        };
      })
      .sort((a, b) => a.id! - b.id!);
  },
};
