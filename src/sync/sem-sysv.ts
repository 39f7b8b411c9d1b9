// System V semaphore sets: semget, semop/semtimedop, semctl.
import { readFileSync } from 'node:fs';
import { IpcError, rangeError, stateError, sys, toIpcError, typeError, type IpcErrorContext, type IpcLimit } from '../core/errors.js';
import { readLimit } from '../core/limits.js';
import { native } from '../core/native.js';
import { forget, ownById } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { checkKey, ownerChanges, ownershipOf, readSysvTable, sysvTime, type SysvKey, type SysvOwnership } from '../core/sysv-key.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned } from '../core/validate.js';
import { awaitNative, checkWaitOptions, type WaitOptions } from '../core/waiter.js';

export interface SemOp {
  /** Which semaphore of the set. */
  index: number;
  /** Added to its value: > 0 releases, < 0 acquires (waits while it would go below 0), 0 waits for zero. */
  delta: number;
  /** SEM_UNDO: the kernel reverts this change when the process exits. Default false. */
  undo?: boolean;
  /** IPC_NOWAIT: do not wait; op() then resolves false if the set cannot be changed now. Default false. */
  nowait?: boolean;
}

export interface SysvSemStat extends SysvOwnership {
  /** Number of semaphores in the set (sem_nsems). */
  count: number;
  /** Slot usage sequence number (ipc_perm.__seq). */
  seq: number;
  /** Last semop; null if none yet. */
  otime: Date | null;
  /** Creation or last semctl change. */
  ctime: Date | null;
}

export interface SysvSemGetOptions {
  /** Semaphores in the set when creating; when opening, the minimum it must have. */
  count?: number;
  /** Create the set if the key has none (IPC_CREAT). Default false ('private': true). */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (IPC_EXCL). Default false. */
  exclusive?: boolean;
  /** Permission bits of a new set. Default 0o600. */
  mode?: number | string;
  /**
   * Remove the set (IPC_RMID) when this process exits (normally, by
   * process.exit(), an uncaught exception, SIGINT, SIGTERM or SIGHUP; not
   * kill -9). Applies only if this call creates it (see `set.owned`). Needs
   * `create` (implied by 'private'). Default false.
   */
  owned?: boolean;
}

const { SEM_UNDO, IPC_NOWAIT, SEMVMX } = native.semSysvConstants;
const SEM_FILE = '/proc/sys/kernel/sem';

/** /proc/sys/kernel/sem: SEMMSL SEMMNS SEMOPM SEMMNI. */
function kernelSemLimits(): { semmsl: number; semmns: number; semopm: number; semmni: number } {
  try {
    const [semmsl, semmns, semopm, semmni] = readFileSync(SEM_FILE, 'utf8').trim().split(/\s+/).map(Number);
    return { semmsl: semmsl!, semmns: semmns!, semopm: semopm!, semmni: semmni! };
  } catch {
    return { semmsl: 32000, semmns: 1024000000, semopm: 500, semmni: 32000 };
  }
}

function semLimit(code: string, syscall: string): IpcLimit | undefined {
  const l = kernelSemLimits();
  if (code === 'ENOSPC' && syscall === 'semget') return { name: `${SEM_FILE} (SEMMNI ${l.semmni}, SEMMNS ${l.semmns})`, value: readLimit(SEM_FILE).value };
  if (code === 'E2BIG') return { name: `${SEM_FILE} SEMOPM`, value: l.semopm };
  if (code === 'ERANGE') return { name: 'SEMVMX', value: SEMVMX };
  if (code === 'ENOSPC') return { name: 'SEM_UNDO entries (SEMMNS in /proc/sys/kernel/sem)' };
  return undefined;
}


/** A System V semaphore set, by id. Nothing to release: `close()` only cancels this handle's waits. */
export class SysvSemaphoreSet implements Disposable {
  readonly id: number;
  readonly key: number;
  /** Number of semaphores in the set. */
  readonly count: number;
  readonly #pending = new Set<AbortController>();
  /** This call created the set with `owned: true`: it is removed when this process exits. */
  readonly owned: boolean;

  /** @internal */
  constructor(id: number, key: number, count: number, owned = false) {
    this.id = id;
    this.key = key;
    this.count = count;
    this.owned = owned;
  }

  get #context(): IpcErrorContext {
    return { id: this.id };
  }

  #index(i: unknown, what = 'index'): number {
    return checkInteger(i, what, 0, this.count - 1);
  }

  #encode(ops: readonly SemOp[]): Int32Array {
    if (!Array.isArray(ops) || ops.length === 0) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'ops must be a non-empty array of { index, delta }');
    const max = kernelSemLimits().semopm;
    if (ops.length > max) {
      throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `${ops.length} operations exceed the per-call limit SEMOPM = ${max} (${SEM_FILE})`);
    }
    const out = new Int32Array(ops.length * 3);
    ops.forEach((op, i) => {
      const o = checkOptions(op, `ops[${i}]`, ['index', 'delta', 'undo', 'nowait']) as SemOp;
      out[3 * i] = this.#index(o.index, `ops[${i}].index`);
      out[3 * i + 1] = checkInteger(o.delta, `ops[${i}].delta`, -32768, 32767);
      out[3 * i + 2] =
        (checkBoolean(o.undo, `ops[${i}].undo`, false) ? SEM_UNDO : 0) | (checkBoolean(o.nowait, `ops[${i}].nowait`, false) ? IPC_NOWAIT : 0);
    });
    return out;
  }

  /**
   * Applies all operations atomically — all or none — as one semtimedop,
   * waiting on a native waiter thread while any would block. Resolves true
   * once applied, false if a `nowait` operation could not proceed (nothing
   * changed). Rejects with IpcError ETIMEDOUT after `timeout` ms (0: try
   * once), with an AbortError when the signal aborts, EIDRM if the set is
   * removed, ERR_IPCKIT_CLOSED if this handle is closed meanwhile.
   */
  async op(ops: readonly SemOp[], options?: WaitOptions): Promise<boolean> {
    const encoded = this.#encode(ops);
    const w = checkWaitOptions(options);
    const own = new AbortController();
    this.#pending.add(own);
    try {
      return (await awaitNative((ns) => native.semSysvOpAsync(this.id, encoded, ns), w, this.#context, undefined, own.signal)) === 0;
    } catch (e) {
      throw explain(e, this.#context);
    } finally {
      this.#pending.delete(own);
    }
  }

  /** op() that blocks this thread: for worker threads. */
  opSync(ops: readonly SemOp[], options?: { timeout?: number }): boolean {
    const encoded = this.#encode(ops);
    const { timeoutNs } = checkWaitOptions(options, false);
    return sys(() => native.semSysvOpSync(this.id, encoded, timeoutNs), this.#context, semLimit) === 0;
  }

  /** semctl(GETVAL). */
  getValue(index: number): number {
    const i = this.#index(index);
    return sys(() => native.semSysvGetVal(this.id, i), this.#context);
  }

  /** semctl(SETVAL): 0..32767 (SEMVMX). Clears every process's undo entry for it. */
  setValue(index: number, value: number): void {
    const i = this.#index(index);
    const v = checkInteger(value, 'value', 0, SEMVMX);
    sys(() => native.semSysvSetVal(this.id, i, v), this.#context, semLimit);
  }

  /** semctl(GETALL). */
  getAll(): number[] {
    return sys(() => native.semSysvGetAll(this.id), this.#context);
  }

  /** semctl(SETALL): one value per semaphore. */
  setAll(values: readonly number[]): void {
    if (!Array.isArray(values) || values.length !== this.count) {
      throw rangeError('ERR_IPCKIT_SIZE_MISMATCH', `values must be an array of ${this.count} numbers (one per semaphore)`);
    }
    const checked = values.map((v, i) => checkInteger(v, `values[${i}]`, 0, SEMVMX));
    sys(() => native.semSysvSetAll(this.id, checked), this.#context, semLimit);
  }

  /** semctl(GETPID): pid of the last process that changed semaphore `index` (0 if none). */
  pidOf(index: number): number {
    const i = this.#index(index);
    return sys(() => native.semSysvGetPid(this.id, i), this.#context);
  }

  /** semctl(GETNCNT): processes waiting for semaphore `index` to increase. */
  waitingCount(index: number): number {
    const i = this.#index(index);
    return sys(() => native.semSysvGetNcnt(this.id, i), this.#context);
  }

  /** semctl(GETZCNT): processes waiting for semaphore `index` to become zero. */
  zeroWaitingCount(index: number): number {
    const i = this.#index(index);
    return sys(() => native.semSysvGetZcnt(this.id, i), this.#context);
  }

  /** semctl(IPC_STAT): every semid_ds field. */
  stat(): SysvSemStat {
    const ds = sys(() => native.semSysvStat(this.id), this.#context);
    const { key, ...owners } = ownershipOf(ds);
    return {
      key,
      count: ds.nsems,
      ...owners,
      seq: ds.seq,
      otime: sysvTime(ds.otime),
      ctime: sysvTime(ds.ctime),
    };
  }

  /** semctl(IPC_SET): change owner and permission bits. */
  set(changes: { mode?: number | string; uid?: number; gid?: number }): void {
    const c = checkOptions(changes, 'changes', ['mode', 'uid', 'gid']) as { mode?: number | string; uid?: number; gid?: number };
    const current = sys(() => native.semSysvStat(this.id), this.#context);
    const { mode, uid, gid } = ownerChanges(c, current);
    sys(() => native.semSysvSet(this.id, uid, gid, mode), this.#context);
  }

  /** semctl(IPC_RMID): removes the set now; every waiter fails with EIDRM. */
  remove(): void {
    sys(() => native.semSysvRemove(this.id), this.#context);
    forget('sysv-sem', this.id);
  }

  /** Cancels this handle's pending op() waits (they reject with ERR_IPCKIT_CLOSED). The set stays. Idempotent. */
  close(): void {
    const reason = stateError('ERR_IPCKIT_CLOSED', `semaphore set id ${this.id}: handle closed`);
    for (const c of this.#pending) c.abort(reason);
    this.#pending.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }
}

function explain(e: unknown, ctx: IpcErrorContext): unknown {
  const err = toIpcError(e, ctx);
  if (err instanceof IpcError) {
    const limit = semLimit(err.code, err.syscall);
    if (limit) return new IpcError(err.errno, err.syscall, { ...ctx, limit });
  }
  return err;
}

// Exported although only `sysv` below uses it: the package's index.d.ts names
// its type as this module's export (`typeof import(...).get`); @public tells knip.
/**
 * Gets (and optionally creates) the set for `key`; 'private' always creates a new one.
 * @public
 */
export function get(key: SysvKey, options?: SysvSemGetOptions): SysvSemaphoreSet {
  const k = checkKey(key);
  const o = checkOptions(options, 'options', ['count', 'create', 'exclusive', 'mode', 'owned']) as SysvSemGetOptions;
  const isPrivate = key === 'private';
  const create = checkBoolean(o.create, 'options.create', isPrivate);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const limits = kernelSemLimits();
  const count = checkInteger(o.count, 'options.count', create ? 1 : 0, limits.semmsl, undefined);
  const mode = checkMode(o.mode);
  if (exclusive && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  if (create && count === undefined) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.count is needed to create a System V semaphore set');
  const { IPC_CREAT, IPC_EXCL } = native.sysvConstants;
  const ctx = isPrivate ? {} : { key: k };
  const getIt = (flags: number): number => {
    try {
      return native.semSysvGet(k, count ?? 0, flags === 0 ? 0 : flags | mode);
    } catch (e) {
      const err = explain(e, ctx);
      if (err instanceof IpcError && err.code === 'EINVAL' && count !== undefined && !isPrivate) {
        try {
          const existing = native.semSysvStat(native.semSysvGet(k, 0, 0));
          if (existing.nsems < count) {
            throw rangeError('ERR_IPCKIT_SIZE_MISMATCH', `set for key ${k} has ${existing.nsems} semaphores, fewer than the requested ${count}`);
          }
        } catch (inner) {
          if (!(inner instanceof IpcError)) throw inner;
        }
      }
      throw err;
    }
  };
  const { handle: id, created } = openOrCreate(getIt, create, exclusive, { create: IPC_CREAT, exclusive: IPC_EXCL });
  if (owned && created) ownById('sysv-sem', id);
  const nsems = sys(() => native.semSysvStat(id), { id }).nsems;
  return new SysvSemaphoreSet(id, isPrivate ? 0 : k, nsems, owned && created);
}

/** Opens the set with identifier `id` (as `ipcs -s` and `ipcmk -S` print it). */
export function fromId(id: number): SysvSemaphoreSet {
  checkInteger(id, 'id', 0, 0x7fffffff);
  const ds = sys(() => native.semSysvStat(id), { id });
  return new SysvSemaphoreSet(id, ds.key, ds.nsems);
}

export interface SysvSemListEntry extends Omit<SysvSemStat, 'seq'> {
  id: number;
  /** Every semaphore's value (semctl GETALL); null if this process may not read them. */
  values: number[] | null;
}

/**
 * Lists every System V semaphore set on the machine from /proc/sysvipc/sem
 * (also those this process may not read), sorted by id. The kernel records
 * no creator pid for sets; pidOf() tells who operated last.
 */
export function list(): SysvSemListEntry[] {
  const rows = readSysvTable('sem', ['semid', 'nsems', 'otime', 'ctime']);
  return rows
    .map(({ num, time, ownership }): SysvSemListEntry => {
      const id = num('semid');
      let values: number[] | null = null;
      try {
        values = native.semSysvGetAll(id);
      } catch {
        // No read permission, or removed meanwhile.
      }
      return {
        ...ownership(),
        id,
        count: num('nsems'),
        values,
        otime: time('otime'),
        ctime: time('ctime'),
      };
    })
    .sort((a, b) => a.id - b.id);
}

export const sysv = { get, fromId, list } as const;
