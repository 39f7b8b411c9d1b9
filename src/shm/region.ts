// A mapped piece of shared memory seen from JavaScript: a real
// SharedArrayBuffer (Atomics work on it across processes and worker threads)
// plus bounds-checked copy helpers. Every shared-memory handle in ipckit
// (POSIX, memfd, fd, file, System V) is, or holds, one of these.
import { markAsUntransferable } from 'node:worker_threads';
import { rangeError, stateError, typeError, type IpcErrorContext } from '../core/errors.js';
import { native, type NativeMapping } from '../core/native.js';
import { checkInteger } from '../core/validate.js';

const kConstruct = Symbol('ipckit.region.construct');
/** On a region's plainBuffer: the SharedArrayBuffer that owns the mapping. */
const OWNER = Symbol('ipckit.region.owner');

export class SharedRegion implements Disposable {
  #buffer: SharedArrayBuffer | null;
  #handle: object | null;
  #plain: ArrayBuffer | null = null;
  #size: number;
  readonly #readOnly: boolean;
  #closed = false;
  /** @internal */
  protected readonly context: IpcErrorContext;

  /** @internal Regions come from shm.open(), shm.anonymous(), mmap.file(), ... */
  constructor(token: symbol, mapping: NativeMapping | null, readOnly: boolean, context: IpcErrorContext) {
    if (token !== kConstruct) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'SharedRegion cannot be constructed directly; use shm.open(), shm.anonymous() or mmap.file()');
    }
    this.#buffer = mapping ? mapping.buffer : new SharedArrayBuffer(0);
    this.#handle = mapping ? mapping.handle : null;
    this.#size = this.#buffer.byteLength;
    this.#readOnly = readOnly;
    this.context = context;
  }

  /** @internal */
  static readonly token = kConstruct;

  /** Bytes mapped. */
  get size(): number {
    return this.#size;
  }

  get readOnly(): boolean {
    return this.#readOnly;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /**
   * The mapped memory. For a read-only region the pages are mapped PROT_READ:
   * read it freely, but a write through it is a memory fault that ends the
   * process (SIGSEGV), exactly as in C. Use write() when in doubt: it checks.
   */
  get buffer(): SharedArrayBuffer {
    this.assertOpen();
    return this.#buffer as SharedArrayBuffer;
  }

  /**
   * @internal The mapped memory as a plain ArrayBuffer over the same pages,
   * made once per mapping: V8 copies into and out of a SharedArrayBuffer
   * (TypedArray set, Buffer copy) one byte at a time unless both sides are
   * equally word-aligned, and with memcpy through a plain one. Listed in a
   * postMessage() transfer it is copied, never detached under its users.
   * Atomics need the SharedArrayBuffer.
   */
  get plainBuffer(): ArrayBuffer {
    this.assertOpen();
    if (this.#plain === null) {
      const plain = this.#handle ? native.mappingAlias(this.#handle) : new ArrayBuffer(0);
      // The range is unmapped when the SharedArrayBuffer is collected: the alias keeps it reachable.
      Object.defineProperty(plain, OWNER, { value: this.#buffer });
      markAsUntransferable(plain);
      this.#plain = plain;
    }
    return this.#plain;
  }

  /** Copies `length` bytes from `offset` into a new Buffer. */
  read(offset = 0, length?: number): Buffer {
    this.assertOpen();
    const start = checkInteger(offset, 'offset', 0, this.#size);
    const count = checkInteger(length, 'length', 0, this.#size - start, this.#size - start);
    return Buffer.from(new Uint8Array(this.#buffer as SharedArrayBuffer, start, count));
  }

  /** Copies `data` (bytes, or a string as UTF-8) in at `offset`; returns the byte count. */
  write(data: string | ArrayBufferView, offset = 0): number {
    this.assertOpen();
    if (this.#readOnly) {
      throw stateError('ERR_IPCKIT_READ_ONLY', `cannot write: ${this.describe()} is mapped read-only`);
    }
    const bytes =
      typeof data === 'string'
        ? Buffer.from(data, 'utf8')
        : ArrayBuffer.isView(data)
          ? new Uint8Array(data.buffer, data.byteOffset, data.byteLength)
          : null;
    if (bytes === null) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'data must be a string, Buffer, TypedArray or DataView');
    }
    const start = checkInteger(offset, 'offset', 0, this.#size);
    if (bytes.byteLength > this.#size - start) {
      throw rangeError(
        'ERR_IPCKIT_OUT_OF_RANGE',
        `${bytes.byteLength} bytes at offset ${start} do not fit in ${this.describe()} of ${this.#size} bytes`,
      );
    }
    new Uint8Array(this.#buffer as SharedArrayBuffer, start, bytes.byteLength).set(bytes);
    return bytes.byteLength;
  }

  /**
   * Releases the mapping of the kernel object now (its attach count drops; an
   * unlinked object's memory is freed once no one maps it). Views you still
   * hold on `buffer` keep working but see private zero pages from here on;
   * the address range itself is returned when the buffer is garbage-collected.
   * Does not remove the kernel object: that is unlink()/remove(). Idempotent.
   */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.detachMapping();
    } finally {
      this.#buffer = null;
      this.#plain = null;
      this.releaseResources();
    }
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** @internal Swaps in a new mapping (after a resize) and detaches the old one. */
  protected replaceMapping(mapping: NativeMapping | null): void {
    this.detachMapping();
    this.#buffer = mapping ? mapping.buffer : new SharedArrayBuffer(0);
    this.#handle = mapping ? mapping.handle : null;
    this.#plain = null;
    this.#size = this.#buffer.byteLength;
  }

  /** @internal Closes descriptors and such; called once by close(). */
  protected releaseResources(): void {}

  /** @internal */
  protected assertOpen(): void {
    if (this.#closed) throw stateError('ERR_IPCKIT_CLOSED', `${this.describe()} is closed`);
  }

  /** @internal */
  protected describe(): string {
    const { path, id, key } = this.context;
    return path !== undefined ? `region '${path}'` : id !== undefined ? `segment id ${id}` : key !== undefined ? `segment key ${key}` : 'region';
  }

  private detachMapping(): void {
    const handle = this.#handle;
    this.#handle = null;
    if (handle) native.mappingDetach(handle);
  }

  /** @internal Used by mmap: msync over [offset, offset+length). */
  protected syncMapping(offset: number, length: number, async: boolean): void {
    this.assertOpen();
    if (this.#handle) native.mappingSync(this.#handle, offset, length, async);
  }
}
