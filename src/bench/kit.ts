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
