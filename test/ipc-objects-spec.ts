// One IPC object of every kind, as test/fixtures/ipc-objects.ts makes or
// holds them for the owned and stale tests: the spec passed to it, and how the
// test process sees and removes what is left. The fixture imports this
// module too, so it stays clear of helpers.ts (which registers node:test hooks).
import { existsSync, unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { mq, sem, shm } from 'ipckit';
import { uniqueKey, uniqueName } from './unique.js';

export interface Spec {
  tag: string;
  dir: string;
  /** System V keys of the segment, the set and the queue. */
  keys: [number, number, number];
  owned: boolean;
  /** make: return | exit | throw | reject | wait (for a signal, or a line on stdin) | listener (own SIGTERM listener) | worker */
  end: string;
  /** make: create:true on objects that exist already (made by the test), owned as asked; no socket. */
  adopt?: boolean;
  /** hold: use only the object of this kind (default: every kind). */
  hold?: string;
}

/** Every kind, in `ipckit ls` order, then the mapped file (not an IPC object, but mmap.file can own it). */
export const KINDS = ['posix-shm', 'sysv-shm', 'posix-sem', 'sysv-sem', 'posix-mq', 'sysv-mq', 'fifo', 'unix-socket', 'mapped-file'];

export function newSpec(what: string, dir: string, end: string, owned: boolean, extra: Partial<Spec> = {}): Spec {
  return { tag: uniqueName(what).slice(1), dir, keys: [uniqueKey(), uniqueKey(), uniqueKey()], owned, end, ...extra };
}

export const objectNames = (s: Spec) => ({
  shm: `/${s.tag}-shm`,
  sem: `/${s.tag}-sem`,
  mq: `/${s.tag}-mq`,
  fifo: join(s.dir, `${s.tag}.fifo`),
  sock: join(s.dir, `${s.tag}.sock`),
  file: join(s.dir, `${s.tag}.bin`),
});

const byKey = (list: Array<{ key: number }>, key: number) => list.some((e) => e.key >>> 0 === key);

/** The kinds of the spec's objects that exist now, in KINDS order. */
export function present(s: Spec): string[] {
  const n = objectNames(s);
  const there: Record<string, boolean> = {
    'posix-shm': existsSync(`/dev/shm${n.shm}`),
    'sysv-shm': byKey(shm.sysv.list(), s.keys[0]),
    'posix-sem': existsSync(`/dev/shm/sem.${n.sem.slice(1)}`),
    'sysv-sem': byKey(sem.sysv.list(), s.keys[1]),
    'posix-mq': mq.list()?.some((q) => q.name === n.mq) ?? false,
    'sysv-mq': byKey(mq.sysv.list(), s.keys[2]),
    fifo: existsSync(n.fifo),
    'unix-socket': existsSync(n.sock),
    'mapped-file': existsSync(n.file),
  };
  return KINDS.filter((k) => there[k]);
}

/** Removes whatever of the spec's objects is left. */
export function cleanup(s: Spec): void {
  const n = objectNames(s);
  const quietly = (f: () => void) => {
    try {
      f();
    } catch {
      /* already gone */
    }
  };
  quietly(() => shm.unlink(n.shm));
  quietly(() => sem.unlink(n.sem));
  quietly(() => mq.unlink(n.mq));
  quietly(() => shm.sysv.get(s.keys[0]).remove());
  quietly(() => sem.sysv.get(s.keys[1]).remove());
  quietly(() => mq.sysv.get(s.keys[2]).remove());
  for (const path of [n.fifo, n.sock, n.file]) quietly(() => unlinkSync(path));
}
