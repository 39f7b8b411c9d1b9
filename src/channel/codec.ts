// Message codecs: how a value becomes the bytes of one frame and back.
// Built-ins: raw (bytes as they are), json, v8 (structured clone: Map, Date,
// typed arrays, BigInt...), msgpack (msgpackr). Any { name, encode, decode }
// object plugs in.
import { Buffer } from 'node:buffer';
import { deserialize, serialize } from 'node:v8';
import { Packr } from 'msgpackr';
import { rangeError, stateError, typeError } from '../core/errors.js';

/** Encodes what a channel sends (T) and decodes what it receives (Decoded: T unless the codec says otherwise, as raw does). */
export interface Codec<T = unknown, Decoded = T> {
  readonly name: string;
  /** The bytes of one message. May return a view; it is copied before the call returns to the caller's next send. */
  encode(value: T): Uint8Array;
  /**
   * The message in `bytes`. `bytes` may be reused once decode returns: copy
   * what you keep. json and msgpack copy by nature; v8 returns typed arrays
   * that view `bytes`, so ipckit reuses only what json or msgpack decoded
   * (decodesIntoOwnMemory).
   */
  decode(bytes: Uint8Array): Decoded;
}

/** Below this many bytes a byte loop beats TypedArray#set out of shared memory (V8's generic path: ~130 ns fixed). */
const LOOP_COPY_MAX = 128;

/** Copies src[at..at+n) to the start of dst (src may be a view into shared memory). */
export function copyFrom(dst: Uint8Array, src: Uint8Array, at: number, n: number): void {
  if (n <= LOOP_COPY_MAX) for (let i = 0; i < n; i++) dst[i] = src[at + i]!;
  else dst.set(src.subarray(at, at + n));
}

/** A fresh Buffer with the `n` bytes of `src` from `at`. */
export function copyRange(src: Uint8Array, at: number, n: number): Buffer {
  // allocUnsafe takes from Node's pool; Buffer.from(view) takes a slower generic path.
  const b = Buffer.allocUnsafe(n);
  copyFrom(b, src, at, n);
  return b;
}

/** A fresh Buffer with the bytes of `bytes`. */
export function copyBytes(bytes: Uint8Array): Buffer {
  return copyRange(bytes, 0, bytes.byteLength);
}

export type CodecName = 'raw' | 'json' | 'v8' | 'msgpack';

export const raw: Codec<ArrayBufferView, Buffer> = {
  name: 'raw',
  encode(value) {
    if (!ArrayBuffer.isView(value)) {
      throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'the raw codec sends Buffer, TypedArray or DataView messages');
    }
    return value instanceof Uint8Array ? value : new Uint8Array(value.buffer, value.byteOffset, value.byteLength);
  },
  // A copy: the bytes may live in a ring that the next message overwrites.
  decode: copyBytes,
};

const json: Codec<unknown> = {
  name: 'json',
  encode(value) {
    const text = JSON.stringify(value);
    if (text === undefined) throw typeError('ERR_IPCKIT_CODEC', 'the json codec cannot send undefined or a function');
    return Buffer.from(text, 'utf8');
  },
  decode: (bytes) => JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('utf8')),
};

const v8: Codec<unknown> = {
  name: 'v8',
  encode: (value) => serialize(value),
  decode: (bytes) => deserialize(bytes),
};

let packr: Packr | undefined;
const msgpack: Codec<unknown> = {
  name: 'msgpack',
  encode: (value) => (packr ??= new Packr({ useRecords: false })).pack(value),
  // msgpackr may keep references into the input for strings/binary: copy first.
  decode: (bytes) => (packr ??= new Packr({ useRecords: false })).unpack(Buffer.from(bytes)),
};

/**
 * Whether `codec` decodes into memory of its own, so the received bytes can
 * be reused at once: json (a string) and msgpack (a copy first) do; v8 does
 * not (Node's deserializer returns typed arrays that view the input), nor
 * may a codec of the user's.
 */
export function decodesIntoOwnMemory(codec: Codec<unknown, unknown>): boolean {
  return codec === json || codec === msgpack;
}

/** The text of anything a codec threw (a codec of the user's may throw what is not an Error, even what String() refuses). */
function textOf(thrown: unknown): string {
  try {
    return thrown instanceof Error ? thrown.message : String(thrown);
  } catch {
    return 'a value that cannot be shown';
  }
}

/**
 * What a send rejects with when the codec cannot encode `what` (a message, a
 * reply): the codec's own ERR_IPCKIT_* errors as they are (raw: not bytes),
 * anything else as a TypeError ERR_IPCKIT_CODEC with the original as `cause`.
 */
export function encodeError(codec: Codec<unknown>, what: string, thrown: unknown): Error {
  if (thrown instanceof Error && String((thrown as { code?: unknown }).code).startsWith('ERR_IPCKIT_')) return thrown;
  const err = typeError('ERR_IPCKIT_CODEC', `cannot encode ${what} with the ${codec.name} codec: ${textOf(thrown)}`);
  err.cause = thrown;
  return err;
}

/**
 * sendBatch(): the bytes of every message, each checked against
 * `maxMessageSize` before any is sent, or the error of the first that fails.
 */
export function encodeBatch<T>(codec: Codec<T, unknown>, messages: readonly T[], maxMessageSize: number): Uint8Array[] | Error {
  const n = messages.length;
  const bodies: Uint8Array[] = new Array(n);
  for (let i = 0; i < n; i++) {
    let body: Uint8Array;
    try {
      body = codec.encode(messages[i]!);
    } catch (e) {
      return encodeError(codec, `message ${i} of the batch`, e);
    }
    // length, not byteLength (the same for a Uint8Array): V8 inlines the first and calls a builtin for the second.
    if (body.length > maxMessageSize) {
      return rangeError('ERR_IPCKIT_MESSAGE_TOO_LARGE', `message ${i} of ${body.length} bytes exceeds maxMessageSize ${maxMessageSize}`);
    }
    bodies[i] = body;
  }
  return bodies;
}

/** The error that fails a channel whose codec cannot decode a received frame of `bytes` bytes; `cause` is what the codec threw. */
export function decodeError(codec: Codec<unknown>, bytes: number, thrown: unknown): Error {
  const err = stateError('ERR_IPCKIT_CODEC', `cannot decode a ${bytes}-byte frame with the ${codec.name} codec: ${textOf(thrown)}`);
  err.cause = thrown;
  return err;
}

const builtins: Record<CodecName, Codec<any>> = { raw, json, v8, msgpack };

export function resolveCodec<T>(codec: CodecName | Codec<T> | undefined, fallback: CodecName = 'json'): Codec<T> {
  if (codec === undefined) return builtins[fallback];
  if (typeof codec === 'string') {
    const c = builtins[codec as CodecName];
    if (!c) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `unknown codec '${codec}' (raw, json, v8, msgpack, or a { name, encode, decode } object)`);
    return c;
  }
  if (typeof codec !== 'object' || codec === null || typeof codec.encode !== 'function' || typeof codec.decode !== 'function') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.codec must be a codec name or an object with encode() and decode()');
  }
  return codec;
}
