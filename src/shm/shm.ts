// POSIX shared memory (shm_open), anonymous shared memory (memfd_create), and
// mapping a descriptor received from elsewhere. System V segments live in
// shm-sysv.ts and are exposed here as shm.sysv.
import { constants as fsc, fchmodSync, fstatSync, ftruncateSync, lstatSync } from 'node:fs';
import { rangeError, stateError, sys, typeError, type IpcErrorContext, type IpcLimit } from '../core/errors.js';
import { fileLimit, readLimit } from '../core/limits.js';
import { native } from '../core/native.js';
import { forget, identityOf, ownByName } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { SharedRegion } from './region.js';
import { entriesIfPresent, fileKey, mappers } from '../core/scan.js';
import { sysv } from './shm-sysv.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, checkPosixName, checkSize, checkString } from '../core/validate.js';

export interface ShmStat {
  /** Size of the object in bytes (may differ from the mapped `size` if someone resized it). */
  size: number;
  /** Permission bits, e.g. 0o600. */
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  atime: Date;
  mtime: Date;
  ctime: Date;
}

/** Shared memory reached through a descriptor: memfd, shm.fromFd(), and the base of named POSIX regions. */
export class FdRegion extends SharedRegion {
  #fd: number;
  readonly #ownsFd: boolean;

  /** @internal */
  constructor(token: symbol, fd: number, ownsFd: boolean, size: number, readOnly: boolean, context: IpcErrorContext) {
    const mapping = size > 0 ? sys(() => native.mappingCreate(fd, size, 0, !readOnly, true), context) : null;
    super(token, mapping, readOnly, context);
    this.#fd = fd;
    this.#ownsFd = ownsFd;
  }

  /** The descriptor; pass it to a child in `spawn(..., { stdio })` and map it there with shm.fromFd(). */
  get fd(): number {
    this.assertOpen();
    return this.#fd;
  }

  /**
   * Sets the object's size (ftruncate) and maps it again at the new size.
   * `buffer` is a new SharedArrayBuffer afterwards; views on the old one see
   * zeros. Other processes keep their old mapping: they must map again, and
   * if the object shrank, touching their pages past the end raises SIGBUS.
   */
  resize(size: number): void {
    this.assertOpen();
    const n = checkSize(size, 'size');
    if (this.readOnly) throw stateError('ERR_IPCKIT_READ_ONLY', `cannot resize: ${this.describe()} was opened read-only`);
    sys(() => ftruncateSync(this.#fd, n), this.context);
    const mapping = n > 0 ? sys(() => native.mappingCreate(this.#fd, n, 0, true, true), this.context) : null;
    this.replaceMapping(mapping);
  }

  /** fstat of the object. */
  stat(): ShmStat {
    this.assertOpen();
    const st = sys(() => fstatSync(this.#fd), this.context);
    return {
      size: st.size,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      ino: st.ino,
      atime: st.atime,
      mtime: st.mtime,
      ctime: st.ctime,
    };
  }

  protected override releaseResources(): void {
    if (this.#ownsFd) sys(() => native.fdClose(this.#fd), this.context);
    this.#fd = -1;
  }
}

/** A named POSIX shared memory object (shm_open) and its mapping. */
export class ShmRegion extends FdRegion {
  readonly name: string;
  /** This call created the object with `owned: true`: it is unlinked when this process exits. */
  readonly owned: boolean;

  /** @internal */
  constructor(token: symbol, name: string, fd: number, size: number, readOnly: boolean, owned = false) {
    super(token, fd, true, size, readOnly, { path: name });
    this.name = name;
    this.owned = owned;
  }

  /** Removes the name (shm_unlink); mappings stay valid until closed. */
  unlink(): void {
    unlink(this.name);
  }
}

export interface ShmOpenOptions {
  /** Create the object if it does not exist (O_CREAT). Default false. */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (O_EXCL). Default false. */
  exclusive?: boolean;
  /**
   * Bytes to map. A new (or still empty) object is sized to this; an existing
   * larger object is mapped in part; a smaller one is an error. Default: the
   * object's current size.
   */
  size?: number;
  /** Permission bits of a new object, applied exactly (not filtered by umask). Default 0o600. */
  mode?: number | string;
  /** Open O_RDONLY and map PROT_READ. Default false. */
  readOnly?: boolean;
  /**
   * Unlink the object when this process exits (normally, by process.exit(),
   * an uncaught exception, SIGINT, SIGTERM or SIGHUP; not kill -9). Applies
   * only if this call creates it: an existing object is opened and left
   * alone (see `region.owned`). Needs `create`. Default false.
   */
  owned?: boolean;
}

const OPTIONS = 'options';
/** Where glibc keeps POSIX shared memory objects as files. */
export const SHM_DIR = '/dev/shm';

/** Opens (and optionally creates) the POSIX shared memory object `name` and maps it. */
export function open(name: string, options?: ShmOpenOptions): ShmRegion {
  checkPosixName(name);
  const o = checkOptions(options, OPTIONS, ['create', 'exclusive', 'size', 'mode', 'readOnly', 'owned']) as ShmOpenOptions;
  const create = checkBoolean(o.create, 'options.create', false);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
  const size = checkSize(o.size, 'options.size', 0, undefined);
  const mode = checkMode(o.mode);
  if (exclusive && !create) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  }
  const ctx = { path: name };
  const access = readOnly ? fsc.O_RDONLY : fsc.O_RDWR;
  const openIt = (flags: number) => sys(() => native.shmOpen(name, access | flags, mode), ctx, fileLimit);

  const { handle: fd, created } = openOrCreate(openIt, create, exclusive);

  try {
    if (created) sys(() => fchmodSync(fd, mode), ctx);
    const current = sys(() => fstatSync(fd), ctx).size;
    let length = current;
    if (size !== undefined) {
      if (current === 0 && size > 0) {
        // A fresh object, or one whose creator has not sized it yet: both
        // sides asking for the same size makes this race harmless.
        if (readOnly) {
          throw stateError('ERR_IPCKIT_READ_ONLY', `cannot size '${name}' to ${size} bytes through a read-only descriptor`);
        }
        sys(() => ftruncateSync(fd, size), ctx);
      } else if (current < size) {
        throw rangeError(
          'ERR_IPCKIT_SIZE_MISMATCH',
          `'${name}' is ${current} bytes, smaller than the requested size ${size}; resize() it first`,
        );
      }
      length = size;
    }
    const region = new ShmRegion(SharedRegion.token, name, fd, length, readOnly, owned && created);
    if (region.owned) ownByName('posix-shm', name, identityOf(`${SHM_DIR}${name}`, fstatSync(fd)));
    return region;
  } catch (e) {
    native.fdClose(fd);
    if (created) native.shmUnlink(name);
    throw e;
  }
}

/** Removes the name `name` (shm_unlink). Existing mappings stay valid. */
export function unlink(name: string): void {
  checkPosixName(name);
  sys(() => native.shmUnlink(name), { path: name });
  forget('posix-shm', name);
}

export interface ShmListEntry {
  /** '/name', as shm.open() takes it. */
  name: string;
  size: number;
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  mtime: Date;
  /**
   * Processes that map it now, counted from /proc/PID/maps (matched by
   * inode). The kernel keeps no such count for POSIX objects; only maps this
   * process may read are counted (all of them as root).
   */
  attaches: number;
}

/**
 * Lists the POSIX shared memory objects (the files in /dev/shm, less the
 * sem.* files of named semaphores, which sem.list() shows), sorted by name.
 * The kernel records no creator for them.
 */
export function list(): ShmListEntry[] {
  const found: Array<{ entry: ShmListEntry; key: string }> = [];
  for (const file of entriesIfPresent(SHM_DIR).filter((n) => !n.startsWith('sem.')).sort()) {
    let st;
    try {
      st = lstatSync(`${SHM_DIR}/${file}`);
    } catch {
      continue; // unlinked while we looked
    }
    if (!st.isFile()) continue;
    const entry = { name: `/${file}`, size: st.size, mode: st.mode & 0o7777, uid: st.uid, gid: st.gid, ino: st.ino, mtime: st.mtime, attaches: 0 };
    found.push({ entry, key: fileKey(st.dev, st.ino) });
  }
  if (found.length > 0) {
    const { byFile } = mappers(`${SHM_DIR}/`);
    for (const f of found) f.entry.attaches = byFile.get(f.key)?.size ?? 0;
  }
  return found.map((f) => f.entry);
}

export interface AnonymousOptions {
  /** Shown in /proc/PID/fd and /proc/PID/maps as `memfd:NAME`. Default 'ipckit'. */
  name?: string;
  /**
   * Seal the size (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL): nobody,
   * this process included, can ever truncate or grow it, so a process that
   * maps it cannot be killed by SIGBUS through a shrink. resize() then fails
   * with EPERM. Default false.
   */
  sealed?: boolean;
}

/**
 * Anonymous shared memory of `size` bytes (memfd_create): no name anyone can
 * open, freed when the last descriptor and mapping go. Share it by handing
 * `region.fd` to a child's stdio or over a Unix socket; map it there with
 * shm.fromFd().
 */
export function anonymous(size: number, options?: AnonymousOptions): FdRegion {
  const n = checkSize(size, 'size', 1);
  const o = checkOptions(options, OPTIONS, ['name', 'sealed']) as AnonymousOptions;
  const label = o.name === undefined ? 'ipckit' : checkString(o.name, 'options.name');
  if (Buffer.byteLength(label) > 249 || label.includes('\0')) {
    throw typeError('ERR_IPCKIT_INVALID_NAME', 'options.name must be at most 249 bytes without NUL');
  }
  const sealed = checkBoolean(o.sealed, 'options.sealed', false);
  const ctx = { path: `memfd:${label}` };
  const { MFD_CLOEXEC, MFD_ALLOW_SEALING, F_SEAL_SHRINK, F_SEAL_GROW, F_SEAL_SEAL } = native.shmConstants;
  const fd = sys(() => native.memfdCreate(label, MFD_CLOEXEC | (sealed ? MFD_ALLOW_SEALING : 0)), ctx, fileLimit);
  try {
    sys(() => ftruncateSync(fd, n), ctx);
    if (sealed) sys(() => native.memfdSeal(fd, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL), ctx);
    return new FdRegion(SharedRegion.token, fd, true, n, false, ctx);
  } catch (e) {
    native.fdClose(fd);
    throw e;
  }
}

export interface FromFdOptions {
  /** Map PROT_READ. Default: read-only exactly when the descriptor is. */
  readOnly?: boolean;
  /** Bytes to map. Default: the object's size. */
  size?: number;
  /** Close the descriptor when the region is closed. Default false (the caller owns it). */
  closeFd?: boolean;
}

/** Maps shared memory given as a descriptor (memfd, shm_open, or a file). */
export function fromFd(fd: number, options?: FromFdOptions): FdRegion {
  checkInteger(fd, 'fd', 0, 0x7fffffff);
  const o = checkOptions(options, OPTIONS, ['readOnly', 'size', 'closeFd']) as FromFdOptions;
  const closeFd = checkBoolean(o.closeFd, 'options.closeFd', false);
  const ctx = { path: `fd:${fd}` };
  const accessMode = sys(() => native.fdAccessMode(fd), ctx);
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly', accessMode === fsc.O_RDONLY);
  const current = sys(() => fstatSync(fd), ctx).size;
  const size = checkSize(o.size, 'options.size', 0, current);
  if (size > current) {
    throw rangeError('ERR_IPCKIT_SIZE_MISMATCH', `fd ${fd} refers to ${current} bytes, fewer than the requested size ${size}`);
  }
  return new FdRegion(SharedRegion.token, fd, closeFd, size, readOnly, ctx);
}

export { sysv };
