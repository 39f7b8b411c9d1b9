// A net.Socket over a descriptor ipckit made (pipe end, FIFO, socketpair
// end, Unix stream socket). net.Socket drives pipes and stream sockets with
// epoll — never the threadpool, unlike fs.createReadStream on a FIFO, whose
// reads block a threadpool thread — and gives the usual Node stream API.
//
// One twist: an O_NONBLOCK flag lives on the open file description, which a
// child shares after spawn(..., { stdio: [end] }). Most programs (cat, C
// stdio) fail with EAGAIN on a non-blocking stdin. libuv makes the descriptor
// non-blocking when it wraps it, so we put it back to blocking right away and
// switch it to non-blocking only when this process first reads or writes
// through the stream. An end handed to a child and never used here stays
// blocking for the child.
import net from 'node:net';
import { typeError } from './errors.js';
import { native } from './native.js';

export interface FdStreamOptions {
  readable: boolean;
  writable: boolean;
  /** Let the other direction stay open after 'end' (net's allowHalfOpen). */
  allowHalfOpen?: boolean;
}

export class FdStream extends net.Socket {
  #fd: number;
  #armed = false;

  /** @internal Made by pipe(), socketpair(), fifo.open(), unix sockets. */
  constructor(fd: number, options: FdStreamOptions) {
    // manualStart: do not start reading before the user asks for data.
    super({ fd, readable: options.readable, writable: options.writable, allowHalfOpen: options.allowHalfOpen ?? false, manualStart: true } as net.SocketConstructorOpts);
    this.#fd = fd;
    native.fdSetNonBlocking(fd, false);
  }

  /** The descriptor (-1 once destroyed). Hand it to a child with `spawn(cmd, args, { stdio: [..., stream] })`. */
  get fd(): number {
    return this.destroyed ? -1 : this.#fd;
  }

  #arm(): void {
    if (this.#armed) return;
    this.#armed = true;
    if (!this.destroyed) native.fdSetNonBlocking(this.#fd, true);
  }

  override _read(size: number): void {
    this.#arm();
    super._read(size);
  }

  override _write(chunk: unknown, encoding: BufferEncoding, cb: (error?: Error | null) => void): void {
    this.#arm();
    super._write(chunk, encoding, cb);
  }

  override _writev(chunks: Array<{ chunk: unknown; encoding: BufferEncoding }>, cb: (error?: Error | null) => void): void {
    this.#arm();
    const base = net.Socket.prototype as unknown as { _writev(this: FdStream, c: typeof chunks, cb: (error?: Error | null) => void): void };
    base._writev.call(this, chunks, cb);
  }

  /**
   * `await using`: destroys the stream (closing the descriptor) and resolves
   * once it closed. Node's own stream dispose would reject for a write-only
   * end (ERR_STREAM_PREMATURE_CLOSE: its readable side counts as ended, so
   * it destroys without an error and then finds the writable side unfinished).
   */
  override async [Symbol.asyncDispose](): Promise<void> {
    if (this.closed) return;
    const closed = new Promise((resolve) => this.once('close', resolve));
    this.destroy();
    await closed;
  }
}

/** Checks a descriptor number given by the caller. */
export function checkFd(fd: unknown, what = 'fd'): number {
  if (typeof fd !== 'number' || !Number.isInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a descriptor number >= 0, got ${String(fd)}`);
  }
  return fd;
}
