// System V shared memory: shmget/shmat/shmdt/shmctl.
import { IpcError, rangeError, stateError, sys, toIpcError, typeError, type IpcErrorContext } from '../core/errors.js';
import { readLimit } from '../core/limits.js';
import { native } from '../core/native.js';
import { forget, ownById } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { SharedRegion } from './region.js';
import { checkKey, ftok, ownerChanges, ownershipOf, readSysvTable, sysvTime, type SysvKey, type SysvOwnership } from '../core/sysv-key.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, checkSize } from '../core/validate.js';

export interface SysvShmStat extends SysvOwnership {
  /** Bytes in the segment (shm_segsz). */
  size: number;
  /** Pid of the creator and of the last shmat/shmdt. */
  cpid: number;
  lpid: number;
  /** Number of current attaches. */
  nattch: number;
  /** Last attach/detach/change; null when it never happened. */
  atime: Date | null;
  dtime: Date | null;
  ctime: Date | null;
  /** IPC_RMID was called; the segment goes when the last process detaches. */
  markedForRemoval: boolean;
  /** SHM_LOCK is in effect. */
  locked: boolean;
}

export interface SysvShmGetOptions {
  /** Create the segment if the key has none (IPC_CREAT). Needs `size`. Default false. */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (IPC_EXCL). Default false. */
  exclusive?: boolean;
  /** Segment size in bytes when creating; when opening, the minimum it must have. */
  size?: number;
  /** Permission bits of a new segment. Default 0o600. */
  mode?: number | string;
  /**
   * Remove the segment (IPC_RMID) when this process exits (normally, by
   * process.exit(), an uncaught exception, SIGINT, SIGTERM or SIGHUP; not
   * kill -9). Applies only if this call creates it (see `segment.owned`).
   * Needs `create` (implied by 'private'). Default false.
   */
  owned?: boolean;
}

export interface AttachOptions {
  /** Attach SHM_RDONLY. Default false. */
  readOnly?: boolean;
}


/** A System V shared memory segment. Attach it to get its SharedArrayBuffer. */
export class SysvSegment implements Disposable {
  readonly id: number;
  readonly key: number;
  /** This call created the segment with `owned: true`: it is removed when this process exits. */
  readonly owned: boolean;
  #region: SharedRegion | null = null;

  /** @internal */
  constructor(id: number, key: number, owned = false) {
    this.id = id;
    this.key = key;
    this.owned = owned;
  }

  get #context(): IpcErrorContext {
    return { id: this.id };
  }

  /** Whether this handle is attached. */
  get attached(): boolean {
    return this.#region !== null;
  }

  /**
   * Attaches the segment (shmat) and returns its memory. Attaching again
   * returns the same buffer. With readOnly the pages are mapped read-only:
   * reading is fine, a write through the buffer ends the process with SIGSEGV
   * (as in C) — use segment.write(), which checks.
   */
  attach(options?: AttachOptions): SharedArrayBuffer {
    const o = checkOptions(options, 'options', ['readOnly']) as AttachOptions;
    const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
    if (this.#region) {
      if (this.#region.readOnly !== readOnly) {
        throw stateError(
          'ERR_IPCKIT_ALREADY_ATTACHED',
          `segment id ${this.id} is already attached ${this.#region.readOnly ? 'read-only' : 'read-write'}; detach() first`,
        );
      }
      return this.#region.buffer;
    }
    const mapping = sys(() => native.shmSysvAttach(this.id, readOnly), this.#context);
    this.#region = new SharedRegion(SharedRegion.token, mapping, readOnly, this.#context);
    return this.#region.buffer;
  }

  /** The attached memory; throws if not attached. */
  get buffer(): SharedArrayBuffer {
    return this.#attachedRegion().buffer;
  }

  /** Copies bytes out of the attached segment. */
  read(offset?: number, length?: number): Buffer {
    return this.#attachedRegion().read(offset, length);
  }

  /** Copies bytes into the attached segment; refuses if attached read-only. */
  write(data: string | ArrayBufferView, offset?: number): number {
    return this.#attachedRegion().write(data, offset);
  }

  /** Detaches (shmdt); views on the old buffer see zeros afterwards. Idempotent. */
  detach(): void {
    const region = this.#region;
    this.#region = null;
    region?.close();
  }

  /** Same as detach(): never removes the segment. */
  close(): void {
    this.detach();
  }

  [Symbol.dispose](): void {
    this.detach();
  }

  /** shmctl(IPC_STAT): every shmid_ds field. */
  stat(): SysvShmStat {
    const ds = sys(() => native.shmSysvStat(this.id), this.#context);
    const { SHM_DEST, SHM_LOCKED } = native.shmSysvConstants;
    const { key, ...owners } = ownershipOf(ds);
    return {
      key,
      size: ds.size,
      ...owners,
      cpid: ds.cpid,
      lpid: ds.lpid,
      nattch: ds.nattch,
      atime: sysvTime(ds.atime),
      dtime: sysvTime(ds.dtime),
      ctime: sysvTime(ds.ctime),
      markedForRemoval: (ds.mode & SHM_DEST) !== 0,
      locked: (ds.mode & SHM_LOCKED) !== 0,
    };
  }

  /** shmctl(IPC_SET): change owner and permission bits. */
  set(changes: { mode?: number | string; uid?: number; gid?: number }): void {
    const c = checkOptions(changes, 'changes', ['mode', 'uid', 'gid']) as { mode?: number | string; uid?: number; gid?: number };
    const current = sys(() => native.shmSysvStat(this.id), this.#context);
    const { mode, uid, gid } = ownerChanges(c, current);
    sys(() => native.shmSysvSet(this.id, uid, gid, mode), this.#context);
  }

  /** shmctl(IPC_RMID): the segment is destroyed once every process has detached. */
  remove(): void {
    sys(() => native.shmSysvRemove(this.id), this.#context);
    forget('sysv-shm', this.id);
  }

  #attachedRegion(): SharedRegion {
    if (!this.#region) throw stateError('ERR_IPCKIT_CLOSED', `segment id ${this.id} is not attached; call attach() first`);
    return this.#region;
  }
}

// Exported although only `sysv` below uses it: the package's index.d.ts names
// its type as this module's export (`typeof import(...).get`); @public tells knip.
/**
 * Gets (and optionally creates) the segment for `key`; 'private' always creates a new one.
 * @public
 */
export function get(key: SysvKey, options?: SysvShmGetOptions): SysvSegment {
  const k = checkKey(key);
  const o = checkOptions(options, 'options', ['create', 'exclusive', 'size', 'mode', 'owned']) as SysvShmGetOptions;
  const isPrivate = key === 'private';
  const create = checkBoolean(o.create, 'options.create', isPrivate);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const size = checkSize(o.size, 'options.size', 1, undefined);
  const mode = checkMode(o.mode);
  if (exclusive && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  if (create && size === undefined) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.size is needed to create a System V segment');
  }
  const { IPC_CREAT, IPC_EXCL } = native.sysvConstants;
  const ctx = isPrivate ? {} : { key: k };
  const getIt = (flags: number): number => {
    try {
      return native.shmSysvGet(k, size ?? 0, flags === 0 ? 0 : flags | mode);
    } catch (e) {
      throw explainShmgetFailure(e, k, size, ctx);
    }
  };
  const { handle: id, created } = openOrCreate(getIt, create, exclusive, { create: IPC_CREAT, exclusive: IPC_EXCL });
  if (owned && created) ownById('sysv-shm', id);
  return new SysvSegment(id, isPrivate ? 0 : k, owned && created);
}

function explainShmgetFailure(e: unknown, key: number, size: number | undefined, ctx: IpcErrorContext): unknown {
  const err = toIpcError(e, ctx);
  if (!(err instanceof IpcError)) return err;
  if (err.code === 'ENOSPC') {
    const mni = readLimit('/proc/sys/kernel/shmmni');
    return new IpcError(err.errno, 'shmget', { ...ctx, limit: mni }, 'no segment id left, or the system-wide page total /proc/sys/kernel/shmall is reached');
  }
  if (err.code === 'EINVAL' && size !== undefined) {
    const max = readLimit('/proc/sys/kernel/shmmax');
    if (typeof max.value === 'number' && size > max.value) return new IpcError(err.errno, 'shmget', { ...ctx, limit: max });
    if (key !== native.sysvConstants.IPC_PRIVATE) {
      try {
        const existing = native.shmSysvStat(native.shmSysvGet(key, 0, 0));
        if (existing.size < size) {
          return rangeError('ERR_IPCKIT_SIZE_MISMATCH', `segment for key ${key} is ${existing.size} bytes, smaller than the requested size ${size}`);
        }
      } catch {
        // Fall through to the kernel's own answer.
      }
    }
  }
  return err;
}

/** Opens the segment with identifier `id` (as `ipcs -m` and `ipcmk -M` print it). */
export function fromId(id: number): SysvSegment {
  checkInteger(id, 'id', 0, 0x7fffffff);
  const ds = sys(() => native.shmSysvStat(id), { id });
  return new SysvSegment(id, ds.key);
}

export interface SysvShmListEntry extends Omit<SysvShmStat, 'mode'> {
  id: number;
  /** Permission bits. */
  mode: number;
  /** Resident and swapped bytes; null where the kernel does not report them. */
  rss: number | null;
  swap: number | null;
}

/**
 * Lists every System V segment on the machine from /proc/sysvipc/shm (also
 * those this process may not attach), sorted by id. A removed segment that
 * is still attached shows with key 0 and markedForRemoval.
 */
export function list(): SysvShmListEntry[] {
  const { SHM_DEST, SHM_LOCKED } = native.shmSysvConstants;
  const rows = readSysvTable('shm', ['shmid', 'size', 'cpid', 'lpid', 'nattch', 'atime', 'dtime', 'ctime']);
  return rows
    .map(({ num, time, optional, perms: permsColumn, ownership }): SysvShmListEntry => {
      const perms = permsColumn();
      return {
        ...ownership(),
        id: num('shmid'),
        size: num('size'),
        cpid: num('cpid'),
        lpid: num('lpid'),
        nattch: num('nattch'),
        atime: time('atime'),
        dtime: time('dtime'),
        ctime: time('ctime'),
        markedForRemoval: (perms & SHM_DEST) !== 0,
        locked: (perms & SHM_LOCKED) !== 0,
        rss: optional('rss'),
        swap: optional('swap'),
      };
    })
    .sort((a, b) => a.id - b.id);
}

export const sysv = { get, fromId, ftok, list } as const;
