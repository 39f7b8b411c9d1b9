// Reading the system's tables for listings: directories of IPC objects, and
// /proc — which processes map a file (/proc/PID/maps), hold it open
// (/proc/PID/fd, /proc/PID/fdinfo), or wait in a System V call on it
// (/proc/PID/task/TID/syscall), and whether a pid is alive. Files are matched
// by device and inode, never by name: a mapping of a removed object whose
// name was reused does not count for the new one, and a POSIX semaphore shows
// in maps under the temporary name glibc created it with.
//
// Processes we may not inspect (other users' when not root) are skipped: for
// non-root callers the answers are lower bounds, and `complete` says whether
// anything was skipped.
import { lstatSync, readdirSync, readFileSync, readlinkSync, realpathSync, statSync, type Stats } from 'node:fs';
import { join, resolve } from 'node:path';

/** The names in `dir`, or none when it does not exist (e.g. /dev/mqueue not mounted); other errors throw. */
export function entriesIfPresent(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/** Files in `dirs` (not recursive) that pass `test`, as absolute real paths with their lstat. */
export function filesIn(dirs: readonly string[], test: (st: Stats) => boolean): Array<{ path: string; st: Stats }> {
  const out: Array<{ path: string; st: Stats }> = [];
  for (const dir of dirs) {
    let base: string;
    let names: string[];
    try {
      base = realpathSync(resolve(dir));
      names = readdirSync(base);
    } catch {
      continue;
    }
    for (const name of names.sort()) {
      const path = join(base, name);
      try {
        const st = lstatSync(path);
        if (test(st)) out.push({ path, st });
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return out;
}

/** The process ids in /proc now; none if /proc cannot be read. */
function processIds(): number[] {
  try {
    return readdirSync('/proc')
      .filter((d) => /^\d+$/.test(d))
      .map(Number);
  } catch {
    return [];
  }
}

/** A /proc read refused for lack of rights (as opposed to a process that ended meanwhile). */
function denied(e: unknown): boolean {
  const code = (e as NodeJS.ErrnoException).code;
  return code === 'EACCES' || code === 'EPERM';
}

/** Whether a process with this pid exists (a zombie counts until reaped). 0 and negatives are never alive. */
export function isAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it exists but belongs to someone else.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A file's identity: "dev:ino", as fileKey() builds it from stat() or from /proc/PID/maps. */
export type FileKey = string;

export function fileKey(dev: number, ino: number): FileKey {
  return `${dev}:${ino}`;
}

/** glibc's makedev(): the st_dev number of the "MAJOR:MINOR" (hex) that /proc/PID/maps prints. */
function makedev(major: number, minor: number): number {
  return (major & 0xfff) * 256 + (minor & 0xff) + (minor & ~0xff) * 4096 + Math.floor(major / 0x1000) * 0x1000 * 2 ** 32;
}

/** Pids per file, plus whether every process could be inspected. */
export interface Users {
  byFile: Map<FileKey, Set<number>>;
  complete: boolean;
}

function add(map: Map<FileKey, Set<number>>, key: FileKey, pid: number): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(pid);
}

/**
 * Processes mapping files whose path (as maps prints it) starts with
 * `prefix`, e.g. '/dev/shm/'. One pass over /proc/PID/maps.
 */
export function mappers(prefix: string): Users {
  const byFile = new Map<FileKey, Set<number>>();
  let complete = true;
  for (const pid of processIds()) {
    let maps: string;
    try {
      maps = readFileSync(`/proc/${pid}/maps`, 'utf8');
    } catch (e) {
      if (denied(e)) complete = false;
      continue;
    }
    if (!maps.includes(prefix)) continue;
    for (const line of maps.split('\n')) {
      // address perms offset dev inode path
      const m = /^\S+\s+\S+\s+\S+\s+([0-9a-f]+):([0-9a-f]+)\s+(\d+)\s+(.*)$/.exec(line);
      if (!m || !m[4]!.startsWith(prefix)) continue;
      add(byFile, fileKey(makedev(parseInt(m[1]!, 16), parseInt(m[2]!, 16)), Number(m[3])), pid);
    }
  }
  return { byFile, complete };
}

export interface Holder {
  pid: number;
  /** O_RDONLY (0), O_WRONLY (1) or O_RDWR (2). */
  access: number;
}

export interface Openers {
  byFile: Map<FileKey, Holder[]>;
  complete: boolean;
}

/**
 * Every open descriptor whose link text passes `candidate` (a cheap filter on
 * readlink(), e.g. a path prefix), by the identity of the file it refers to,
 * with its access mode. Files removed since they were opened count too.
 */
export function openers(candidate: (link: string) => boolean): Openers {
  const byFile = new Map<FileKey, Holder[]>();
  let complete = true;
  for (const pid of processIds()) {
    let fds: string[];
    try {
      fds = readdirSync(`/proc/${pid}/fd`);
    } catch (e) {
      if (denied(e)) complete = false;
      continue;
    }
    for (const fd of fds) {
      let key: FileKey;
      try {
        if (!candidate(readlinkSync(`/proc/${pid}/fd/${fd}`))) continue;
        const st = statSync(`/proc/${pid}/fd/${fd}`);
        key = fileKey(st.dev, st.ino);
      } catch {
        continue; // closed meanwhile
      }
      let access = 0;
      try {
        const m = /^flags:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        if (m) access = parseInt(m[1]!, 8) & 3;
      } catch {
        /* gone meanwhile */
      }
      let list = byFile.get(key);
      if (!list) byFile.set(key, (list = []));
      list.push({ pid, access });
    }
  }
  return { byFile, complete };
}

/** System V calls a thread can wait in, by syscall number for this architecture. */
const SYSV_WAITS: Record<string, { msg: number[]; sem: number[] }> = {
  x64: { msg: [69, 70], sem: [65, 220] }, // msgsnd msgrcv; semop semtimedop
  arm64: { msg: [189, 188], sem: [193, 192] },
};

export interface SysvWaiters {
  /** Pids with a thread blocked in msgsnd/msgrcv, by queue id. */
  msg: Map<number, Set<number>>;
  /** Pids with a thread blocked in semop/semtimedop, by set id. */
  sem: Map<number, Set<number>>;
  /** False when some thread could not be inspected, or this architecture's numbers are unknown. */
  complete: boolean;
}

/**
 * Threads blocked in a System V message or semaphore call, from
 * /proc/PID/task/TID/syscall (the call's number, then its arguments in hex;
 * the first is the queue or set id). Needs the right to ptrace the process
 * (the same user, or root).
 */
export function sysvWaiters(): SysvWaiters {
  const out: SysvWaiters = { msg: new Map(), sem: new Map(), complete: true };
  const numbers = SYSV_WAITS[process.arch];
  if (!numbers) return { ...out, complete: false };
  for (const pid of processIds()) {
    let tasks: string[];
    try {
      tasks = readdirSync(`/proc/${pid}/task`);
    } catch (e) {
      if (denied(e)) out.complete = false;
      continue;
    }
    for (const tid of tasks) {
      let text: string;
      try {
        text = readFileSync(`/proc/${pid}/task/${tid}/syscall`, 'utf8');
      } catch (e) {
        if (denied(e)) out.complete = false;
        continue;
      }
      const [nr, first] = text.trim().split(' ');
      const call = Number(nr);
      const target = numbers.msg.includes(call) ? out.msg : numbers.sem.includes(call) ? out.sem : null;
      if (!target || first === undefined) continue;
      const id = Number(BigInt.asIntN(32, BigInt(first)));
      let set = target.get(id);
      if (!set) target.set(id, (set = new Set()));
      set.add(pid);
    }
  }
  return out;
}
