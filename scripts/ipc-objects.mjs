// The IPC objects on this machine, as the leak checks see them: POSIX shared
// memory and semaphores (/dev/shm), POSIX message queues (/dev/mqueue) and
// System V objects (/proc/sysvipc), each with the pids the kernel recorded for
// it (System V shared memory: creator and last attach; queues: last sender
// and receiver), so a check can tell another live process's object from a leak.
import { readdirSync, readFileSync } from 'node:fs';

function listDir(dir) {
  try {
    return readdirSync(dir).map((n) => ({ name: `${dir}/${n}`, kind: 'posix', pids: [] }));
  } catch {
    return [];
  }
}

const PID_COLUMNS = { shm: ['cpid', 'lpid'], sem: [], msg: ['lspid', 'lrpid'] };

function sysv(kind) {
  let lines;
  try {
    lines = readFileSync(`/proc/sysvipc/${kind}`, 'utf8').trim().split('\n');
  } catch {
    return [];
  }
  const header = lines[0].trim().split(/\s+/);
  return lines.slice(1).map((line) => {
    const f = line.trim().split(/\s+/);
    return {
      name: `sysv-${kind} key=0x${(Number(f[0]) >>> 0).toString(16)} id=${f[1]}`,
      kind: `sysv-${kind}`,
      id: Number(f[1]),
      pids: PID_COLUMNS[kind].map((column) => Number(f[header.indexOf(column)])).filter((pid) => pid > 0),
    };
  });
}

/** Every IPC object now, as { name, kind, id (System V), pids }. */
export function ipcObjects() {
  return [...listDir('/dev/shm'), ...listDir('/dev/mqueue'), ...sysv('shm'), ...sysv('sem'), ...sysv('msg')];
}
