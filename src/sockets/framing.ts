// Length-prefixed framing for byte streams. A pipe, FIFO or stream socket
// carries bytes, not messages: "需要事先约定好数据的格式" — both sides must agree
// on a format. This one is the simplest that works everywhere: a 4-byte
// big-endian length, then that many bytes (the same as Python's
// struct.pack('>I', n) + data, or Java's DataOutputStream.writeInt).
//
// The decoder checks the length against maxFrameSize from the 4 header bytes
// alone, so a hostile or corrupt length is rejected without allocating it.
import { EventEmitter, once } from 'node:events';
import type { Duplex, Readable, Writable } from 'node:stream';
import { Transform, type TransformCallback } from 'node:stream';
import { IpcError, typeError, errno } from '../core/errors.js';
import { checkInteger, checkOptions, show } from '../core/validate.js';

export const HEADER_BYTES = 4;
/** Default largest frame: 16 MiB. */
export const DEFAULT_MAX_FRAME = 16 * 1024 * 1024;
const MAX_LENGTH = 0xffffffff;

export interface FramingOptions {
  /** Largest payload accepted, in bytes (at most 2^32-1). Default 16 MiB. */
  maxFrameSize?: number;
}

function checkMax(options: unknown): number {
  const o = checkOptions(options as FramingOptions | undefined, 'options', ['maxFrameSize']) as FramingOptions;
  return checkInteger(o.maxFrameSize, 'options.maxFrameSize', 0, MAX_LENGTH, DEFAULT_MAX_FRAME);
}

function toBytes(payload: unknown): Uint8Array {
  if (typeof payload === 'string') return Buffer.from(payload, 'utf8');
  if (payload instanceof Uint8Array) return payload;
  throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `a frame payload must be a string or Uint8Array, got ${show(payload)}`);
}

function tooLarge(length: number, max: number, syscall: string): IpcError {
  return new IpcError(errno.EMSGSIZE, syscall, { limit: { name: 'options.maxFrameSize', value: max } }, `frame of ${length} bytes exceeds the limit`);
}

/** Header + payload as one Buffer. */
export function encode(payload: string | Uint8Array, options?: FramingOptions): Buffer {
  const max = checkMax(options);
  const bytes = toBytes(payload);
  if (bytes.length > max) throw tooLarge(bytes.length, max, 'write');
  const out = Buffer.allocUnsafe(HEADER_BYTES + bytes.length);
  out.writeUInt32BE(bytes.length, 0);
  out.set(bytes, HEADER_BYTES);
  return out;
}

/** Turns a byte stream into frames: write bytes in, read one Buffer per frame. */
export class FrameDecoder extends Transform {
  readonly maxFrameSize: number;
  #chunks: Buffer[] = [];
  #buffered = 0;
  #need = -1; // payload length of the frame being collected, -1 while reading the header

  constructor(options?: FramingOptions) {
    const max = checkMax(options);
    super({ readableObjectMode: true });
    this.maxFrameSize = max;
  }

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#chunks.push(chunk);
    this.#buffered += chunk.length;
    try {
      for (;;) {
        if (this.#need < 0) {
          if (this.#buffered < HEADER_BYTES) break;
          const length = this.#take(HEADER_BYTES).readUInt32BE(0);
          if (length > this.maxFrameSize) throw tooLarge(length, this.maxFrameSize, 'read');
          this.#need = length;
        }
        if (this.#buffered < this.#need) break;
        const frame = this.#take(this.#need);
        this.#need = -1;
        this.push(frame);
      }
      callback();
    } catch (e) {
      callback(e as Error);
    }
  }

  override _flush(callback: TransformCallback): void {
    if (this.#buffered > 0 || this.#need >= 0) {
      callback(new IpcError(errno.EPROTO, 'read', {}, `stream ended inside a frame (${this.#buffered} of ${this.#need < 0 ? HEADER_BYTES : this.#need} bytes)`));
      return;
    }
    callback();
  }

  #take(n: number): Buffer {
    const first = this.#chunks[0];
    let out: Buffer;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.#chunks.shift();
      else this.#chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const c = this.#chunks[0];
        const k = Math.min(c.length, n - filled);
        c.copy(out, filled, 0, k);
        filled += k;
        if (k === c.length) this.#chunks.shift();
        else this.#chunks[0] = c.subarray(k);
      }
    }
    this.#buffered -= n;
    return out;
  }
}

/** Turns frames into bytes: write payloads, read the framed byte stream. */
export class FrameEncoder extends Transform {
  readonly maxFrameSize: number;

  constructor(options?: FramingOptions) {
    const max = checkMax(options);
    super({ writableObjectMode: true });
    this.maxFrameSize = max;
  }

  override _transform(payload: unknown, _encoding: BufferEncoding, callback: TransformCallback): void {
    try {
      callback(null, encode(toBytes(payload), { maxFrameSize: this.maxFrameSize }));
    } catch (e) {
      callback(e as Error);
    }
  }
}

/** A message channel over any byte stream (pipe ends, FIFO, socketpair, Unix/TCP socket). */
export class FramedChannel extends EventEmitter implements AsyncDisposable {
  readonly #in: Readable;
  readonly #out: Writable;
  readonly #decoder: FrameDecoder;
  #closing: Promise<void> | null = null;
  readonly maxFrameSize: number;

  constructor(input: Readable, output: Writable, options?: FramingOptions) {
    super();
    this.maxFrameSize = checkMax(options);
    this.#in = input;
    this.#out = output;
    this.#decoder = new FrameDecoder({ maxFrameSize: this.maxFrameSize });
    this.#decoder.on('data', (frame: Buffer) => this.emit('message', frame));
    this.#decoder.on('error', (e) => {
      // A bad header means the byte stream is out of step: nothing after it can be trusted.
      input.unpipe(this.#decoder);
      input.destroy();
      this.emit('error', e);
    });
    this.#decoder.on('end', () => this.emit('end'));
    input.on('error', (e) => this.emit('error', e));
    input.on('close', () => this.emit('close'));
    input.pipe(this.#decoder);
  }

  /** Sends one frame; resolves when the stream accepted it (backpressure respected). */
  send(payload: string | Uint8Array): Promise<void> {
    const bytes = encode(payload, { maxFrameSize: this.maxFrameSize });
    return new Promise((resolve, reject) => {
      this.#out.write(bytes, (e) => (e ? reject(e) : resolve()));
    });
  }

  /** Ends our side of the stream. */
  end(): void {
    this.#out.end();
  }

  /**
   * Ends our side once what send() queued is written, then stops reading and
   * destroys the input stream (the streams are the channel's). Resolves when
   * both are done. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await new Promise<void>((resolve) => this.#out.end(() => resolve()));
      this.#in.unpipe(this.#decoder);
      if (!this.#in.closed) {
        const closed = once(this.#in, 'close').catch(() => {});
        this.#in.destroy();
        await closed;
      }
    })();
    return this.#closing;
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }
}

/** Frames over a duplex stream (one socket), or over a [readable, writable] pair. */
export function channel(stream: Duplex | [Readable, Writable], options?: FramingOptions): FramedChannel {
  if (Array.isArray(stream)) return new FramedChannel(stream[0], stream[1], options);
  return new FramedChannel(stream, stream, options);
}
