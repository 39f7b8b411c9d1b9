// mmap(2) of regular files (and character devices such as /dev/zero).
// The checks here are the pitfalls C programmers meet: an empty file cannot
// be mapped, the offset must be a multiple of the page size, the mapping's
// protection cannot exceed how the file was opened, and touching pages past
// the end of the file raises SIGBUS.
import { closeSync, constants as fsc, fstatSync, ftruncateSync, openSync } from 'node:fs';
import { rangeError, sys, typeError } from '../core/errors.js';
import { native, PAGE_SIZE } from '../core/native.js';
import { identityOf, ownByName } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { SharedRegion } from './region.js';
import { checkBoolean, checkMode, checkOptions, checkOwned, checkSize, checkString } from '../core/validate.js';

/** The page size: a mapping's offset is a multiple of it. */
export { PAGE_SIZE };

export interface MmapFileOptions {
  /** MAP_SHARED (writes reach the file and other mappers) or MAP_PRIVATE (copy-on-write). Default true. */
  shared?: boolean;
  /** Bytes to map. Default: from `offset` to the end of the file. */
  size?: number;
  /** Where the mapping starts in the file; a multiple of the page size. Default 0. */
  offset?: number;
  /** Open O_RDONLY and map PROT_READ. Default false. */
  readOnly?: boolean;
  /** Create the file if missing (O_CREAT, with `mode`). Default false. */
  create?: boolean;
  /** Extend the file (ftruncate) when it is shorter than offset + size. Default false. */
  grow?: boolean;
  /** Permission bits for a created file. Default 0o600. */
  mode?: number | string;
  /**
   * Delete the file when this process exits (normally, by process.exit(), an
   * uncaught exception, SIGINT, SIGTERM or SIGHUP; not kill -9), if this call
   * created it and it is still that file (see `map.owned`). Needs `create`.
   * Default false.
   */
  owned?: boolean;
}

/** A mapped file. */
export class MappedFile extends SharedRegion {
  readonly path: string;
  readonly offset: number;
  readonly shared: boolean;
  /** This call created the file with `owned: true`: it is deleted when this process exits. */
  readonly owned: boolean;

  /** @internal */
  constructor(token: symbol, path: string, mapping: ReturnType<typeof native.mappingCreate>, readOnly: boolean, offset: number, shared: boolean, owned = false) {
    super(token, mapping, readOnly, { path });
    this.path = path;
    this.offset = offset;
    this.shared = shared;
    this.owned = owned;
  }

  /**
   * msync: writes dirty pages of a shared mapping back to the file. With
   * `async`, schedules it (MS_ASYNC) instead of waiting (MS_SYNC).
   */
  sync(options?: { async?: boolean; offset?: number; length?: number }): void {
    const o = checkOptions(options, 'options', ['async', 'offset', 'length']) as { async?: boolean; offset?: number; length?: number };
    const async = checkBoolean(o.async, 'options.async', false);
    const start = checkSize(o.offset, 'options.offset', 0, 0);
    if (start > this.size) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `options.offset ${start} is past the mapping's ${this.size} bytes`);
    const length = checkSize(o.length, 'options.length', 0, this.size - start);
    if (length > this.size - start) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `options.length ${length} runs past the mapping's end`);
    sys(() => this.syncMapping(start, length, async), { path: this.path });
  }
}

// Exported although only `mmap` below uses it: the public mmap.file is typed as
// this declaration (@public tells knip).
/**
 * Maps `path` into memory.
 * @public
 */
export function file(path: string, options?: MmapFileOptions): MappedFile {
  checkString(path, 'path');
  const o = checkOptions(options, 'options', ['shared', 'size', 'offset', 'readOnly', 'create', 'grow', 'mode', 'owned']) as MmapFileOptions;
  const shared = checkBoolean(o.shared, 'options.shared', true);
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
  const create = checkBoolean(o.create, 'options.create', false);
  const owned = checkOwned(o.owned, create);
  const grow = checkBoolean(o.grow, 'options.grow', false);
  const mode = checkMode(o.mode);
  const offset = checkSize(o.offset, 'options.offset', 0, 0);
  const size = checkSize(o.size, 'options.size', 1, undefined);
  if (offset % PAGE_SIZE !== 0) {
    throw rangeError('ERR_IPCKIT_UNALIGNED_OFFSET', `options.offset must be a multiple of the page size (${PAGE_SIZE}), got ${offset}`);
  }
  if (readOnly && grow) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.grow cannot be used with options.readOnly');

  // A shared writable mapping needs the file open for writing; a private one
  // only needs read access, since its writes never reach the file.
  const needsWrite = (shared && !readOnly) || grow;
  const access = needsWrite ? fsc.O_RDWR : fsc.O_RDONLY;
  const ctx = { path };
  // O_CREAT|O_EXCL first when owning, to learn whether this call made the file.
  const { handle: fd, created } = owned
    ? openOrCreate((extra) => sys(() => openSync(path, access | extra, mode), ctx), true, false)
    : { handle: sys(() => openSync(path, access | (create ? fsc.O_CREAT : 0), mode), ctx), created: false };
  try {
    const st = sys(() => fstatSync(fd), ctx);
    const isFile = st.isFile();
    let length = size ?? st.size - offset;
    if (isFile) {
      if (size === undefined && st.size === 0) {
        throw rangeError('ERR_IPCKIT_EMPTY_FILE', `cannot map '${path}': the file is empty (a mapping needs at least 1 byte; write to it, or pass size with grow: true)`);
      }
      if (size === undefined && offset >= st.size) {
        throw rangeError('ERR_IPCKIT_BEYOND_EOF', `options.offset ${offset} is at or past the end of '${path}' (${st.size} bytes)`);
      }
      if (offset + length > st.size) {
        if (!grow) {
          throw rangeError(
            'ERR_IPCKIT_BEYOND_EOF',
            `'${path}' is ${st.size} bytes; mapping ${length} bytes at offset ${offset} would reach past its end, where access raises SIGBUS (pass grow: true to extend the file)`,
          );
        }
        sys(() => ftruncateSync(fd, offset + length), ctx);
      }
    } else if (size === undefined) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `'${path}' is not a regular file: options.size is required`);
    }
    length = Math.max(length, 0);
    const mapping = sys(() => native.mappingCreate(fd, length, offset, !readOnly, shared), ctx);
    if (created) ownByName('file', path, identityOf(path, st));
    return new MappedFile(SharedRegion.token, path, mapping, readOnly, offset, shared, created);
  } finally {
    // The mapping holds its own reference to the file.
    closeSync(fd);
  }
}

export const mmap = { file } as const;
