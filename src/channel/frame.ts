// What travels in one frame, on every transport:
//   byte 0      kind: 0 message, 1 request, 2 reply, 3 error reply, 4 bye,
//               5 hello (the first frame each way on stream, seqpacket,
//               fifo and pipe transports: JSON, see hello.ts), 6 ping
//               (tcp://, tls:// heartbeats: "still here", one byte)
//   bytes 1..4  correlation id (u32 LE), requests and replies only
//   rest        the codec's bytes (error replies: JSON { message, code })
// Stream transports (unix:, tcp:, pipe:) prefix each frame with its length
// (u32 LE); the shm: ring stores the length in the record header instead.
import { stateError } from '../core/errors.js';

export const KIND_MESSAGE = 0;
export const KIND_REQUEST = 1;
export const KIND_REPLY = 2;
export const KIND_ERROR = 3;
/** Stream transports only: "I am closing on purpose", so EOF without it means the peer died. Never reaches the Channel. */
export const KIND_BYE = 4;
/** The first frame each way on stream-like transports: the hello (hello.ts). Never reaches the Channel. */
export const KIND_HELLO = 5;
/** Network streams only: a heartbeat, sent after a quiet interval so the peer knows this side is alive. Never reaches the Channel. */
export const KIND_PING = 6;
/** Largest hello frame (JSON bytes + kind). */
export const HELLO_MAX = 4096;

/** The one-byte header of a plain message, shared by every send (never mutated). */
export const MESSAGE_HEADER = new Uint8Array([KIND_MESSAGE]);

export function correlatedHeader(kind: number, id: number): Uint8Array {
  const h = new Uint8Array(5);
  h[0] = kind;
  h[1] = id & 0xff;
  h[2] = (id >>> 8) & 0xff;
  h[3] = (id >>> 16) & 0xff;
  h[4] = id >>> 24;
  return h;
}

/** header + body as one new buffer: one frame for transports that send a frame as one message. */
export function joinFrame(header: Uint8Array, body: Uint8Array): Buffer {
  const frame = Buffer.allocUnsafe(header.byteLength + body.byteLength);
  frame.set(header, 0);
  frame.set(body, header.byteLength);
  return frame;
}

export function headerLength(kind: number): number {
  return kind === KIND_MESSAGE ? 1 : 5;
}

/** The correlation id of the frame starting at frame[start]. */
export function readId(frame: Uint8Array, start = 0): number {
  return (frame[start + 1]! | (frame[start + 2]! << 8) | (frame[start + 3]! << 16) | (frame[start + 4]! << 24)) >>> 0;
}

export function badFrame(message: string): Error & { code: 'ERR_IPCKIT_BAD_FRAME' } {
  return stateError('ERR_IPCKIT_BAD_FRAME', message) as Error & { code: 'ERR_IPCKIT_BAD_FRAME' };
}

/** Checks kind and minimum length of frame[start..end); returns an error message, or null when the frame is well formed. */
export function checkFrame(frame: Uint8Array, start = 0, end = frame.byteLength): string | null {
  if (end - start < 1) return 'empty frame';
  const kind = frame[start]!;
  if (kind > KIND_ERROR) return `unknown frame kind ${kind}`;
  if (end - start < headerLength(kind)) return `frame of kind ${kind} is ${end - start} bytes, shorter than its header`;
  return null;
}

/**
 * Cuts a byte stream into length-prefixed frames without ever allocating more
 * than one frame of at most `maxFrame` bytes: a larger length prefix is an
 * error before anything is allocated for it. While `held()` says so (the
 * receiver is paused), no further frame is cut: the bytes wait here, so a
 * pause takes effect at once, not after the rest of a 64 KiB read.
 */
export class StreamFramer {
  readonly #maxFrame: number;
  /** Unconsumed bytes: #buf[#pos..], then the chunks in #more. */
  #buf: Buffer | null = null;
  #pos = 0;
  #more: Buffer[] = [];
  #moreBytes = 0;

  constructor(maxFrame: number) {
    this.#maxFrame = maxFrame;
  }

  /** Takes a chunk and calls onFrame for each complete frame (until held()); throws ERR_IPCKIT_BAD_FRAME on an impossible length. */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void, held: () => boolean = notHeld): void {
    if (this.#buf === null) {
      this.#buf = chunk;
      this.#pos = 0;
    } else {
      this.#more.push(chunk);
      this.#moreBytes += chunk.length;
    }
    this.cut(onFrame, held);
  }

  /** Cuts the frames already buffered (after a pause ends). */
  cut(onFrame: (frame: Buffer) => void, held: () => boolean = notHeld): void {
    while (this.#buf !== null && !held()) {
      const buf = this.#buf;
      const pos = this.#pos;
      const here = buf.length - pos;
      if (here < 4) {
        if (here + this.#moreBytes < 4) return;
        this.#merge();
        continue;
      }
      const len = buf.readUInt32LE(pos);
      if (len === 0) throw badFrame('zero-length frame');
      if (len > this.#maxFrame) {
        throw badFrame(`incoming frame of ${len} bytes exceeds maxMessageSize (${this.#maxFrame - 5} bytes of payload)`);
      }
      if (here - 4 < len) {
        // Merge only once the whole frame is here (one copy per frame that spans reads).
        if (here - 4 + this.#moreBytes < len) return;
        this.#merge();
        continue;
      }
      this.#pos = pos + 4 + len;
      if (this.#pos === buf.length) this.#next();
      onFrame(buf.subarray(pos + 4, pos + 4 + len));
    }
  }

  /** Joins what is left of the current buffer with every chunk after it. */
  #merge(): void {
    const parts = [this.#buf!.subarray(this.#pos), ...this.#more];
    this.#buf = Buffer.concat(parts, this.pending);
    this.#pos = 0;
    this.#more = [];
    this.#moreBytes = 0;
  }

  #next(): void {
    const next = this.#more.shift();
    this.#buf = next ?? null;
    this.#pos = 0;
    if (next) this.#moreBytes -= next.length;
  }

  /** Bytes not yet cut into frames (an incomplete frame of a peer that hung up, or frames held back). */
  get pending(): number {
    return this.#buf === null ? 0 : this.#buf.length - this.#pos + this.#moreBytes;
  }
}

const notHeld = (): boolean => false;
