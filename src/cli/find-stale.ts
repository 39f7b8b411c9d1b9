// Stale IPC objects: left behind by processes that are gone (a kill -9, a
// crash), and in use by nobody now. What counts as evidence, per kind:
//
// - POSIX shared memory and named semaphores: no process maps the file
//   (/proc/PID/maps, by inode) or holds a descriptor to it (/proc/PID/fd).
//   The kernel records no creator for POSIX objects, so "nobody has it open
//   or mapped" is the whole test: an object made to outlive its creator on
//   purpose and closed right now (`ipckit shm create`) counts as stale too.
// - POSIX message queues: no process holds a descriptor to it.
// - System V segments: no attaches (shm_nattch) and both the creator (cpid)
//   and the last process to attach or detach (lpid) are gone.
// - System V semaphore sets: nobody waits on it (semncnt, semzcnt) and every
//   process that last operated on one of its semaphores (sempid) is gone.
// - System V message queues: no thread waits in msgsnd/msgrcv on it
//   (/proc/PID/task/TID/syscall) and the last sender and receiver are gone.
//   Sets and queues record no creator pid: one nobody ever operated on is
//   stale only once it is UNUSED_GRACE_MS old (its creator may be about to
//   use it).
// - FIFOs: nobody has it open. Socket files: no socket is bound to the path
//   (not in /proc/net/unix, and connect() is refused). Both only in
//   directories the caller names: never a walk of the whole filesystem.
//
// Without root, other users' processes cannot be inspected: objects others
// could use are then not judged at all (a note says how many).
import { lstatSync } from 'node:fs';
import { dirname } from 'node:path';
import { formatKey, IpcError } from '../core/errors.js';
import { list as fifoList, remove as fifoRemove } from '../pipes/fifo.js';
import { list as mqList, mountPoint, unlink as mqUnlink } from '../mq/mq-posix.js';
import { fromId as mqFromId, list as sysvMqList } from '../mq/mq-sysv.js';
import { fileKey, filesIn, isAlive, mappers, openers, sysvWaiters, type Openers, type SysvWaiters, type Users } from '../core/scan.js';
import { list as semList, semFile, unlink as semUnlink } from '../sync/sem.js';
import { fromId as semFromId, list as sysvSemList } from '../sync/sem-sysv.js';
import { list as shmList, SHM_DIR, unlink as shmUnlink } from '../shm/shm.js';
import { fromId as shmFromId, list as sysvShmList } from '../shm/shm-sysv.js';
import { procNetUnix } from '../sockets/unix-list.js';
import { connectRefused, unlinkIfSame } from '../sockets/socket-file.js';

const STALE_KINDS = ['posix-shm', 'sysv-shm', 'posix-sem', 'sysv-sem', 'posix-mq', 'sysv-mq', 'fifo', 'unix-socket'] as const;
export type StaleKind = (typeof STALE_KINDS)[number];

/** A System V set or queue nobody ever used is stale only once it is this old. */
const UNUSED_GRACE_MS = 60_000;

export interface StaleObject {
  kind: StaleKind;
  /** As `ipckit ls` names it: '/name', '0x1234abcd', 'id:5', or a path. */
  name: string;
  key?: number;
  id?: number;
  uid: number;
  /** Permission bits. */
  mode: number;
  /** Why it counts as stale, in words. */
  reason: string;
  /** The file a name-addressed object lives in, as it was when judged. */
  file?: { path: string; dev: number; ino: number };
}

export interface StaleOptions {
  /** Only these kinds. Default: all. */
  kinds?: readonly StaleKind[];
  /** Where to look for FIFOs and socket files (not recursive). Default: nowhere. */
  dirs?: readonly string[];
  /** Only objects last changed at least this many milliseconds ago. Default 0. */
  minAge?: number;
}

export interface StaleReport {
  stale: StaleObject[];
  /** Remarks for the reader, e.g. how many objects could not be judged and why. */
  notes: string[];
}

/** /proc scans, each done at most once per findStale() and only if a kind needs it. */
class Scans {
  #maps?: Users;
  #shmFds?: Openers;
  #mqFds?: Openers;
  #waiters?: SysvWaiters;
  get shmMaps(): Users {
    return (this.#maps ??= mappers(`${SHM_DIR}/`));
  }
  get shmFds(): Openers {
    return (this.#shmFds ??= openers((link) => link.startsWith(`${SHM_DIR}/`)));
  }
  /** Queue descriptors read back as '/NAME' (the queue's path inside the mqueue filesystem). */
  get mqFds(): Openers {
    return (this.#mqFds ??= openers((link) => /^\/[^/]+$/.test(link)));
  }
  get waiters(): SysvWaiters {
    return (this.#waiters ??= sysvWaiters());
  }
}

interface Judged {
  object: StaleObject;
  /** When it last changed, for minAge. */
  changed: Date | null;
  /** Whether the /proc evidence behind the verdict covered every process. */
  complete: boolean;
}

const ago = (d: Date | null): number => (d ? Date.now() - d.getTime() : Infinity);
const latest = (...dates: Array<Date | null>): Date | null =>
  dates.reduce<Date | null>((a, b) => (b && (!a || b > a) ? b : a), null);
const sysvName = (key: number, id: number): string => (key === 0 ? `id:${id}` : formatKey(key));
const pidList = (pids: number[]): string =>
  [...new Set(pids.filter((p) => p > 0))].map((p) => `pid ${p}`).join(', ');

function posixFiles(kind: 'posix-shm' | 'posix-sem', scans: Scans): Judged[] {
  const entries = kind === 'posix-shm' ? shmList() : semList();
  const out: Judged[] = [];
  for (const e of entries) {
    const path = kind === 'posix-shm' ? `${SHM_DIR}${e.name}` : semFile(e.name);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    const key = fileKey(st.dev, st.ino);
    if (scans.shmMaps.byFile.has(key) || scans.shmFds.byFile.has(key)) continue;
    out.push({
      object: { kind, name: e.name, uid: e.uid, mode: e.mode, reason: 'nobody maps it or has it open', file: { path, dev: st.dev, ino: st.ino } },
      changed: st.ctime,
      complete: scans.shmMaps.complete && scans.shmFds.complete,
    });
  }
  return out;
}

function posixQueues(scans: Scans): Judged[] {
  const dir = mountPoint();
  if (!dir) return [];
  const out: Judged[] = [];
  for (const q of mqList() ?? []) {
    const path = `${dir}${q.name}`;
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (scans.mqFds.byFile.has(fileKey(st.dev, st.ino))) continue;
    const reason = `nobody has it open${q.bytes > 0 ? `; ${q.bytes} bytes of messages in it` : ''}`;
    out.push({ object: { kind: 'posix-mq', name: q.name, uid: q.uid, mode: q.mode, reason, file: { path, dev: st.dev, ino: st.ino } }, changed: st.ctime, complete: scans.mqFds.complete });
  }
  return out;
}

function sysvSegments(): Judged[] {
  const out: Judged[] = [];
  for (const s of sysvShmList()) {
    if (s.nattch > 0) continue;
    const why = lastUsersGone([s.cpid, s.lpid], s.ctime, 'its creator and last user');
    if (why === null) continue;
    out.push({
      object: {
        kind: 'sysv-shm',
        name: sysvName(s.key, s.id),
        key: s.key,
        id: s.id,
        uid: s.uid,
        mode: s.mode,
        reason: `no attaches, and ${why}`,
      },
      changed: latest(s.atime, s.dtime, s.ctime),
      complete: true,
    });
  }
  return out;
}

/** Why a set or queue with these last-operation pids counts as stale, or null if it does not. */
function lastUsersGone(pids: number[], made: Date | null, who = 'the last processes to use it'): string | null {
  const known = [...new Set(pids.filter((p) => p > 0))];
  if (known.length === 0) {
    if (ago(made) < UNUSED_GRACE_MS) return null;
    return `nobody has used it since it was made ${Math.round(ago(made) / 60_000)} min ago (the kernel records no creator pid)`;
  }
  return known.some(isAlive) ? null : `${who} are gone (${pidList(known)})`;
}

function sysvSets(scans: Scans): Judged[] {
  const out: Judged[] = [];
  for (const s of sysvSemList()) {
    const pids: number[] = [];
    let waiting = scans.waiters.sem.has(s.id);
    try {
      const set = semFromId(s.id);
      for (let i = 0; i < s.count && !waiting; i++) {
        waiting = set.waitingCount(i) > 0 || set.zeroWaitingCount(i) > 0;
        pids.push(set.pidOf(i));
      }
    } catch {
      continue; // no read permission, or removed meanwhile
    }
    if (waiting) continue;
    const why = lastUsersGone(pids, s.ctime);
    if (why === null) continue;
    out.push({
      object: { kind: 'sysv-sem', name: sysvName(s.key, s.id), key: s.key, id: s.id, uid: s.uid, mode: s.mode, reason: `nobody waits on it, and ${why}` },
      changed: latest(s.otime, s.ctime),
      complete: true,
    });
  }
  return out;
}

function sysvQueues(scans: Scans): Judged[] {
  const out: Judged[] = [];
  for (const q of sysvMqList()) {
    if (scans.waiters.msg.has(q.id)) continue;
    const why = lastUsersGone([q.lspid, q.lrpid], q.ctime);
    if (why === null) continue;
    const held = q.qnum > 0 ? `; ${q.qnum} message${q.qnum === 1 ? '' : 's'} in it` : '';
    out.push({
      object: { kind: 'sysv-mq', name: sysvName(q.key, q.id), key: q.key, id: q.id, uid: q.uid, mode: q.mode, reason: `nobody waits on it, and ${why}${held}` },
      changed: latest(q.stime, q.rtime, q.ctime),
      complete: scans.waiters.complete,
    });
  }
  return out;
}

function fifos(dirs: readonly string[]): Judged[] {
  if (dirs.length === 0) return [];
  const out: Judged[] = [];
  for (const f of fifoList(dirs)) {
    if (f.opens > 0) continue;
    let st;
    try {
      st = lstatSync(f.path);
    } catch {
      continue;
    }
    out.push({
      object: { kind: 'fifo', name: f.path, uid: f.uid, mode: f.mode, reason: 'nobody has it open', file: { path: f.path, dev: st.dev, ino: st.ino } },
      changed: st.ctime,
      // fifo.list() reads /proc/PID/fd: complete only for root.
      complete: process.getuid?.() === 0,
    });
  }
  return out;
}

function socketFiles(dirs: readonly string[]): Judged[] {
  if (dirs.length === 0) return [];
  const bound = new Set(procNetUnix().map((e) => e.path));
  const out: Judged[] = [];
  // A path in /proc/net/unix is served; only the others are probed, so live servers see no stray connection.
  for (const { path, st } of filesIn(dirs, (s) => s.isSocket())) {
    if (bound.has(path) || !connectRefused(path)) continue;
    out.push({
      object: { kind: 'unix-socket', name: path, uid: st.uid, mode: st.mode & 0o7777, reason: 'no socket is bound to it (connect is refused)', file: { path, dev: st.dev, ino: st.ino } },
      changed: st.ctime,
      complete: true,
    });
  }
  return out;
}

function judge(kind: StaleKind, scans: Scans, dirs: readonly string[]): Judged[] {
  switch (kind) {
    case 'posix-shm':
    case 'posix-sem':
      return posixFiles(kind, scans);
    case 'posix-mq':
      return posixQueues(scans);
    case 'sysv-shm':
      return sysvSegments();
    case 'sysv-sem':
      return sysvSets(scans);
    case 'sysv-mq':
      return sysvQueues(scans);
    case 'fifo':
      return fifos(dirs);
    case 'unix-socket':
      return socketFiles(dirs);
  }
}

/** Whether only this process's user (and root) can use the object. */
function onlyOurs(o: StaleObject): boolean {
  return o.uid === process.getuid?.() && (o.mode & 0o077) === 0;
}

/** Finds the stale objects of the given kinds. Read-only: nothing is removed. */
export function findStale(options: StaleOptions = {}): StaleReport {
  const kinds = options.kinds ?? STALE_KINDS;
  const dirs = options.dirs ?? [];
  const minAge = options.minAge ?? 0;
  const scans = new Scans();
  const stale: StaleObject[] = [];
  let unjudged = 0;
  for (const kind of kinds) {
    for (const j of judge(kind, scans, dirs)) {
      if (ago(j.changed) < minAge) continue;
      // Evidence from /proc that missed some processes is trusted only for objects nobody else could use.
      if (!j.complete && !onlyOurs(j.object)) {
        unjudged++;
        continue;
      }
      stale.push(j.object);
    }
  }
  const notes: string[] = [];
  if (unjudged > 0) {
    notes.push(`${unjudged} object(s) other users could use were not judged: their processes cannot be inspected without root`);
  }
  if (kinds.includes('posix-mq') && !mountPoint()) notes.push('POSIX queues cannot be listed: the mqueue filesystem is not mounted');
  return { stale, notes };
}

const sameObject = (a: StaleObject, b: StaleObject): boolean =>
  a.kind === b.kind && a.name === b.name && a.id === b.id && a.file?.dev === b.file?.dev && a.file?.ino === b.file?.ino;

/** Judges one object again, now: its current reason, or null if it is in use (or gone) by now. */
function recheck(object: StaleObject): string | null {
  const dirs = object.file && (object.kind === 'fifo' || object.kind === 'unix-socket') ? [dirname(object.file.path)] : [];
  const again = findStale({ kinds: [object.kind], dirs }).stale.find((o) => sameObject(o, object));
  return again ? again.reason : null;
}

/** Whether the file is still the one that was judged (nobody replaced it since). */
function unchanged(file: StaleObject['file']): boolean {
  if (!file) return true;
  try {
    const st = lstatSync(file.path);
    return st.dev === file.dev && st.ino === file.ino;
  } catch {
    return false;
  }
}

export type RemoveOutcome = { removed: true } | { removed: false; why: string };

/**
 * Removes a stale object after judging it once more, right before: an object
 * someone started using since it was listed is kept.
 */
export function removeStale(object: StaleObject): RemoveOutcome {
  if (recheck(object) === null || !unchanged(object.file)) return { removed: false, why: 'in use now, or gone' };
  try {
    switch (object.kind) {
      case 'posix-shm':
        shmUnlink(object.name);
        break;
      case 'posix-sem':
        semUnlink(object.name);
        break;
      case 'posix-mq':
        mqUnlink(object.name);
        break;
      case 'sysv-shm':
        shmFromId(object.id!).remove();
        break;
      case 'sysv-sem':
        semFromId(object.id!).remove();
        break;
      case 'sysv-mq':
        mqFromId(object.id!).remove();
        break;
      case 'fifo':
        fifoRemove(object.name);
        break;
      case 'unix-socket':
        if (!unlinkIfSame(object.name, object.file!.dev, object.file!.ino)) return { removed: false, why: 'replaced meanwhile' };
        break;
    }
  } catch (e) {
    if (e instanceof IpcError && (e.code === 'ENOENT' || e.code === 'EINVAL' || e.code === 'EIDRM')) return { removed: false, why: 'gone meanwhile' };
    throw e;
  }
  return { removed: true };
}
