// `ipckit ls` sections for message queues: POSIX queues (files of the mqueue
// filesystem, when it is mounted) and System V queues (/proc/sysvipc/msg).
import * as posix from '../mq/mq-posix.js';
import { list as sysvList } from '../mq/mq-sysv.js';
import { sysvRow, type LsProvider, type LsRow } from './ls.js';
import { userName } from './users.js';

export const MOUNT_HINT = 'mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue';

export const posixMqProvider: LsProvider = {
  kind: 'posix-mq',
  title: 'POSIX message queues (mqueue filesystem)',
  countName: 'messages',
  list(): LsRow[] {
    return (posix.list() ?? []).map((q) => ({
      kind: 'posix-mq',
      name: q.name,
      owner: userName(q.uid),
      uid: q.uid,
      mode: q.mode,
      // QSIZE: bytes of message data queued.
      size: q.bytes,
      count: q.messages,
      extra: { gid: q.gid, notifyPid: q.notifyPid },
    }));
  },
  notes() {
    if (posix.mountPoint()) return [];
    return [
      `the mqueue filesystem is not mounted, so POSIX queues cannot be listed (they still work); as root: ${MOUNT_HINT}`,
    ];
  },
};

export const sysvMqProvider: LsProvider = {
  kind: 'sysv-mq',
  title: 'System V message queues',
  countName: 'messages',
  list(): LsRow[] {
    return sysvList().map(
      (q): LsRow => ({
        ...sysvRow('sysv-mq', q),
        size: q.cbytes,
        count: q.qnum,
        extra: { gid: q.gid, lspid: q.lspid, lrpid: q.lrpid },
      }),
    );
  },
};
