// `ipckit ls` sections for path-based IPC: FIFOs in the --path directories
// (fifo.list()), and Unix domain sockets (unix.list(): every listening or
// bound path socket on the system, plus any socket file found in --path
// directories, stale ones included).
import { list as fifoList } from '../pipes/fifo.js';
import { list as unixList } from '../sockets/unix-list.js';
import { lsPaths, type LsProvider, type LsRow } from './ls.js';
import { userName } from './users.js';

export const fifoProvider: LsProvider = {
  kind: 'fifo',
  title: 'FIFOs (named pipes, in --path directories)',
  countName: 'opens',
  detailName: 'state',
  list(): LsRow[] {
    return fifoList(lsPaths).map((f) => {
      const state = `${f.readers}r/${f.writers}w`;
      return {
        kind: 'fifo',
        name: f.path,
        owner: userName(f.uid),
        uid: f.uid,
        mode: f.mode,
        count: f.opens,
        detail: state,
        extra: { state, readers: f.readers, writers: f.writers, pids: f.pids },
      };
    });
  },
};

export const unixSocketProvider: LsProvider = {
  kind: 'unix-socket',
  title: 'Unix domain sockets (bound to a path)',
  countName: 'connections',
  detailName: 'state',
  list(): LsRow[] {
    return unixList(lsPaths).map((s) => ({
      kind: 'unix-socket',
      name: s.path,
      owner: userName(s.uid),
      uid: s.uid,
      mode: s.mode,
      count: s.connections,
      detail: s.state,
      extra: { state: s.state, type: s.type },
    }));
  },
};
