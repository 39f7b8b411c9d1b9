// Small helpers shared by benchmark cases.
import type { TrialParams } from './types.js';

/** A POSIX IPC name ('/PREFIX-tag') the harness sweeps away after the trial. */
export function posixName(params: TrialParams, tag: string): string {
  return `/${params.namePrefix}-${tag}`;
}

/** A message of `size` bytes that is not all zeros (zero pages can be special). */
export function payload(size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = (i * 31 + 7) & 0xff;
  return b;
}

/**
 * The sum, modulo 2^32, of `bytes` read as little-endian 32-bit words from
 * its first byte (a tail shorter than a word adds its bytes one by one).
 * Reads every byte, so a receiver that computes it has really touched the
 * message; one changed byte changes one term by less than 2^32, so it always
 * changes the sum. Through a DataView because views into a ring are not
 * 4-byte aligned (shm: records put a 1-byte header before the payload); four
 * running sums let the loads overlap (about 8 GB/s here, twice one sum).
 */
export function checksum(bytes: Uint8Array): number {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const words = bytes.byteLength >>> 2;
  let a = 0;
  let b = 0;
  let c = 0;
  let d = 0;
  let i = 0;
  for (; i + 16 <= words << 2; i += 16) {
    a = (a + dv.getUint32(i, true)) | 0;
    b = (b + dv.getUint32(i + 4, true)) | 0;
    c = (c + dv.getUint32(i + 8, true)) | 0;
    d = (d + dv.getUint32(i + 12, true)) | 0;
  }
  for (; i < words << 2; i += 4) a = (a + dv.getUint32(i, true)) | 0;
  for (; i < bytes.byteLength; i++) a = (a + bytes[i]!) | 0;
  return (a + b + c + d) >>> 0;
}

/** Round trips are timed one by one; warm-up rounds are run but not kept. */
export class RttRecorder {
  readonly samples: Float64Array;
  readonly #warmup: number;
  #round = 0;
  #start = 0n;

  constructor(warmup: number, count: number) {
    this.#warmup = warmup;
    this.samples = new Float64Array(count);
  }

  /** Rounds still to run (warm-up included). */
  get remaining(): number {
    return this.#warmup + this.samples.length - this.#round;
  }

  /** Call right before sending a ping. */
  start(): void {
    this.#start = process.hrtime.bigint();
  }

  /** Call right after the pong arrived; returns true when that was the last round. */
  stop(): boolean {
    const end = process.hrtime.bigint();
    const i = this.#round++ - this.#warmup;
    if (i >= 0) this.samples[i] = Number(end - this.#start);
    return this.remaining === 0;
  }
}

/**
 * The round trips of a byte stream: writes `msg` to `output`, waits until
 * `input` has delivered as many bytes back, and again, timing each round
 * with `rtt` until it has them all.
 */
export function streamPingPong(input: NodeJS.ReadableStream, output: NodeJS.WritableStream, msg: Buffer, rtt: RttRecorder): Promise<void> {
  return new Promise<void>((resolve) => {
    let got = 0;
    const onData = (chunk: Buffer) => {
      got += chunk.length;
      if (got < msg.length) return;
      got = 0;
      if (rtt.stop()) {
        input.off('data', onData);
        resolve();
        return;
      }
      rtt.start();
      output.write(msg);
    };
    input.on('data', onData);
    rtt.start();
    output.write(msg);
  });
}

/** Rejects when `child` exits before `promise` settles, so a driver never waits on a dead echo. */
export function unlessExited<T>(promise: Promise<T>, exited: Promise<void>): Promise<T> {
  return Promise.race([
    promise,
    exited.then(() => {
      throw new Error('echo peer exited before the driver finished');
    }),
  ]);
}

/**
 * The one-way phase of the protocol (TrialParams): `send(n)` streams n
 * messages and resolves on the echo's acknowledgement; an untimed batch of
 * `onewayWarmup`, then the timed batch of `onewayCount`. Returns its nanoseconds.
 */
export async function timeOneway(
  send: (n: number) => Promise<void>,
  params: Pick<TrialParams, 'onewayWarmup' | 'onewayCount'>,
  exited: Promise<void>,
): Promise<number> {
  await unlessExited(send(params.onewayWarmup), exited);
  const t0 = process.hrtime.bigint();
  await unlessExited(send(params.onewayCount), exited);
  return Number(process.hrtime.bigint() - t0);
}
