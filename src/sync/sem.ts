// POSIX semaphores: named (sem_open, visible as /dev/shm/sem.NAME) and
// unnamed process-shared ones living in a shared region (sem_init with
// pshared=1). System V semaphore sets are in sem-sysv.ts (sem.sysv).
import { setMaxListeners } from 'node:events';
import { chmodSync, lstatSync } from 'node:fs';
import { rangeError, stateError, sys, typeError, type IpcErrorContext, type IpcLimit } from '../core/errors.js';
import { readLimit } from '../core/limits.js';
import { native } from '../core/native.js';
import { forget, identityOf, ownByName } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { entriesIfPresent } from '../core/scan.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, checkPosixName, show } from '../core/validate.js';
import { awaitNative, checkWaitOptions, type WaitOptions } from '../core/waiter.js';

export interface SemOpenOptions {
  /** Create the semaphore if it does not exist (O_CREAT). Default false. */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (O_EXCL). Default false. */
  exclusive?: boolean;
  /** Initial value of a semaphore this call creates. Default 0. */
  value?: number;
  /** Permission bits of a new semaphore, applied exactly (not filtered by umask). Default 0o600. */
  mode?: number | string;
  /**
   * Unlink the semaphore when this process exits (normally, by
   * process.exit(), an uncaught exception, SIGINT, SIGTERM or SIGHUP; not
   * kill -9). Applies only if this call creates it (see `semaphore.owned`).
   * Needs `create`. Default false.
   */
  owned?: boolean;
}

export interface InMemoryOptions {
  /** Initialise the sem_t here with this value (sem_init, pshared). Omit to use one another process initialised. */
  init?: number;
}

const { SEM_VALUE_MAX, SIZEOF_SEM_T, ALIGNOF_SEM_T } = native.semConstants;
/** Bytes a semaphore occupies in shared memory (sizeof(sem_t)). */
export const SEM_SIZE = SIZEOF_SEM_T;
/** Required alignment of its byte offset. */
export const SEM_ALIGN = ALIGNOF_SEM_T;

function valueLimit(code: string): IpcLimit | undefined {
  if (code === 'EOVERFLOW') return { name: 'SEM_VALUE_MAX', value: SEM_VALUE_MAX };
  if (code === 'EMFILE') return { name: 'RLIMIT_NOFILE (ulimit -n)' };
  if (code === 'ENFILE') return readLimit('/proc/sys/fs/file-max');
  return undefined;
}

/** A POSIX semaphore, named or in shared memory. */
export class Semaphore implements Disposable {
  /** The name for named semaphores; undefined for in-memory ones. */
  readonly name: string | undefined;
  /** This call created the semaphore with `owned: true`: it is unlinked when this process exits. */
  readonly owned: boolean;
  #handle: object | null;
  /** Keeps the shared memory of an in-memory semaphore mapped while we use it. */
  readonly #memory: Uint8Array | null;
  readonly #context: IpcErrorContext;
  readonly #closing = new AbortController();

  /** @internal */
  constructor(handle: object, name: string | undefined, memory: Uint8Array | null, owned = false) {
    this.#handle = handle;
    this.name = name;
    this.owned = owned;
    this.#memory = memory;
    this.#context = name !== undefined ? { path: name } : {};
    // Every pending wait listens to it: any number of waits is normal use.
    setMaxListeners(0, this.#closing.signal);
  }

  get closed(): boolean {
    return this.#handle === null;
  }

  /** Current value (sem_getvalue). */
  get value(): number {
    return sys(() => native.semGetValue(this.#open()), this.#context);
  }

  /** Increments the value, waking one waiter (sem_post). EOVERFLOW at SEM_VALUE_MAX. */
  post(): void {
    sys(() => native.semPost(this.#open()), this.#context, valueLimit);
  }

  /** Decrements if the value is above zero (sem_trywait); returns whether it did. */
  tryWait(): boolean {
    return sys(() => native.semTryWait(this.#open()), this.#context);
  }

  /**
   * Decrements, waiting on a native waiter thread while the value is zero
   * (sem_wait; sem_clockwait on CLOCK_MONOTONIC with a timeout). Rejects with
   * IpcError ETIMEDOUT when the timeout passes, with an AbortError when the
   * signal aborts, and with ERR_IPCKIT_CLOSED if close() is called meanwhile.
   */
  async wait(options?: WaitOptions): Promise<void> {
    const w = checkWaitOptions(options);
    const handle = this.#open();
    await awaitNative((ns) => native.semWaitAsync(handle, ns, this), w, this.#context, undefined, this.#closing.signal);
  }

  /** wait() that blocks this thread: for worker threads. Throws IpcError ETIMEDOUT on timeout. */
  waitSync(options?: { timeout?: number }): void {
    const { timeoutNs } = checkWaitOptions(options, false);
    const handle = this.#open();
    sys(() => native.semWaitSync(handle, timeoutNs), this.#context);
  }

  /**
   * Releases this handle (sem_close for named semaphores) and rejects pending
   * waits with ERR_IPCKIT_CLOSED. Never removes the semaphore: unlink() does.
   * An in-memory semaphore is not destroyed either (others may use it).
   */
  close(): void {
    const handle = this.#handle;
    if (handle === null) return;
    this.#handle = null;
    this.#closing.abort(stateError('ERR_IPCKIT_CLOSED', `${this.#describe()} was closed while waiting`));
    native.semClose(handle);
  }

  /** Removes the name (sem_unlink); handles stay usable until closed. */
  unlink(): void {
    if (this.name === undefined) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'an in-memory semaphore has no name to unlink');
    unlink(this.name);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  #open(): object {
    if (this.#handle === null) throw stateError('ERR_IPCKIT_CLOSED', `${this.#describe()} is closed`);
    return this.#handle;
  }

  #describe(): string {
    return this.name !== undefined ? `semaphore '${this.name}'` : 'in-memory semaphore';
  }
}

function checkValue(value: unknown, what: string, fallback?: number): number {
  return checkInteger(value, what, 0, SEM_VALUE_MAX, fallback as number);
}

/** Opens (and optionally creates) the named semaphore `name` ('/name'). */
export function open(name: string, options?: SemOpenOptions): Semaphore {
  // glibc stores it as /dev/shm/sem.NAME, so 4 bytes of NAME_MAX go to the prefix.
  checkPosixName(name, 'name', 251);
  const o = checkOptions(options, 'options', ['create', 'exclusive', 'value', 'mode', 'owned']) as SemOpenOptions;
  const create = checkBoolean(o.create, 'options.create', false);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const value = checkValue(o.value, 'options.value', 0);
  const mode = checkMode(o.mode);
  if (exclusive && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  if (o.value !== undefined && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.value needs options.create');
  const ctx = { path: name };
  const openIt = (flags: number) => sys(() => native.semOpen(name, flags, mode, value), ctx, valueLimit);
  const { handle, created } = openOrCreate(openIt, create, exclusive);
  const file = semFile(name);
  if (created) {
    try {
      chmodSync(file, mode); // the exact mode, not the umask-filtered one
    } catch {
      // Not the glibc layout: the umask-filtered mode stays.
    }
    if (owned) ownByName('posix-sem', name, identityOf(file));
  }
  return new Semaphore(handle, name, null, owned && created);
}

/** Where glibc keeps the named semaphore `name`: /dev/shm/sem.NAME. */
export function semFile(name: string): string {
  return `/dev/shm/sem.${name.slice(1)}`;
}

/** Removes the named semaphore `name` (sem_unlink). */
export function unlink(name: string): void {
  checkPosixName(name, 'name', 251);
  sys(() => native.semUnlink(name), { path: name });
  forget('posix-sem', name);
}

export interface SemListEntry {
  /** '/name', as sem.open() takes it. */
  name: string;
  /** The current value; null if this process may not open it. */
  value: number | null;
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  mtime: Date;
}

/**
 * Lists the named semaphores (glibc keeps them as /dev/shm/sem.NAME), sorted
 * by name, each with its value (read with sem_open + sem_getvalue +
 * sem_close). The kernel records no creator for them.
 */
export function list(): SemListEntry[] {
  const out: SemListEntry[] = [];
  for (const file of entriesIfPresent('/dev/shm').filter((n) => n.startsWith('sem.') && n.length > 4).sort()) {
    let st;
    try {
      st = lstatSync(`/dev/shm/${file}`);
    } catch {
      continue; // unlinked while we looked
    }
    if (!st.isFile()) continue;
    const name = `/${file.slice(4)}`;
    let value: number | null = null;
    try {
      using s = open(name);
      value = s.value;
    } catch {
      // No permission, or unlinked meanwhile.
    }
    out.push({ name, value, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ino: st.ino, mtime: st.mtime });
  }
  return out;
}

/**
 * A process-shared unnamed semaphore (a sem_t) at `byteOffset` in shared
 * memory: `SEM_SIZE` bytes, offset a multiple of `SEM_ALIGN`. Give `init` in
 * exactly one process, before the others use it.
 */
export function inMemory(buffer: SharedArrayBuffer, byteOffset = 0, options?: InMemoryOptions): Semaphore {
  if (!(buffer instanceof SharedArrayBuffer)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `buffer must be a SharedArrayBuffer (an ipckit region's .buffer), got ${show(buffer)}`);
  }
  const offset = checkInteger(byteOffset, 'byteOffset', 0, Math.max(0, buffer.byteLength - SEM_SIZE));
  if (buffer.byteLength < SEM_SIZE) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `buffer of ${buffer.byteLength} bytes cannot hold a semaphore (${SEM_SIZE} bytes)`);
  }
  if (offset % SEM_ALIGN !== 0) {
    throw rangeError('ERR_IPCKIT_UNALIGNED_OFFSET', `byteOffset ${offset} must be a multiple of ${SEM_ALIGN}`);
  }
  const o = checkOptions(options, 'options', ['init']) as InMemoryOptions;
  const init = o.init === undefined ? -1 : checkValue(o.init, 'options.init');
  const view = new Uint8Array(buffer, offset, SEM_SIZE);
  return new Semaphore(sys(() => native.semInMemory(view, init)), undefined, view);
}
