// futex-sync / futex-async: two Node processes share an anonymous ipckit
// region (memfd, handed to the echo as fd 3) and sleep in the kernel between
// messages instead of spinning: futex.wait (blocking, as in a worker thread)
// or futex.waitAsync (a native waiter thread, the event loop stays free).
// Compare with shm-atomics (spinning, the floor) and baseline:net-unix.
//
// Protocol words (Int32): PING/PONG carry round numbers; HEAD/TAIL are the
// one-way ring's counters. A sleeper waits on the word it expects to change;
// the writer always notifies (FUTEX_WAKE costs ~1 µs when nobody sleeps).
import { setTimeout as sleep } from 'node:timers/promises';
import { futex, shm } from '../../index.js';
import { payload, RttRecorder, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

const PING = 0;
const PONG = 1;
const HEAD = 2;
const TAIL = 3;
const READY = 4;
const CONTROL_BYTES = 64;
const RING_BYTES = 1 << 20;
/** Sleeps are bounded so a dead peer is noticed (guard()) within this many ms. */
const SLICE_MS = 200;

interface View {
  words: Int32Array;
  ping: Uint8Array;
  pong: Uint8Array;
  ring: Uint8Array[];
}

function layout(size: number): { slot: number; slots: number; bytes: number } {
  const slot = Math.ceil(Math.max(size, 1) / 64) * 64;
  const slots = Math.max(2, Math.min(1024, Math.floor(RING_BYTES / slot)));
  return { slot, slots, bytes: CONTROL_BYTES + slot * (2 + slots) };
}

function view(buffer: SharedArrayBuffer, size: number): View {
  const { slot, slots } = layout(size);
  const at = (i: number) => new Uint8Array(buffer, CONTROL_BYTES + slot * i, size);
  return { words: new Int32Array(buffer, 0, CONTROL_BYTES / 4), ping: at(0), pong: at(1), ring: Array.from({ length: slots }, (_, i) => at(2 + i)) };
}

/** Sleeps at most one slice; false when the slice passed with no change. */
type Sleep = (words: Int32Array, index: number, value: number) => Promise<boolean> | boolean;
const sliceOver = (e: unknown): false => {
  if ((e as { code?: string }).code !== 'ETIMEDOUT') throw e;
  return false;
};
const sleepSync: Sleep = (w, i, v) => {
  try {
    futex.wait(w, i, v, { timeout: SLICE_MS });
    return true;
  } catch (e) {
    return sliceOver(e);
  }
};
const sleepAsync: Sleep = (w, i, v) => futex.waitAsync(w, i, v, { timeout: SLICE_MS }).then(() => true, sliceOver);

/**
 * Waits until words[index] satisfies `done`, sleeping on the value last seen.
 * guard() (it reads /proc) runs only after a sleep that saw no change for a
 * whole slice, so it costs nothing per message.
 */
async function until(wait: Sleep, words: Int32Array, index: number, done: (v: number) => boolean, guard: () => void): Promise<number> {
  for (;;) {
    const v = Atomics.load(words, index);
    if (done(v)) return v;
    const r = wait(words, index, v);
    if (!(r instanceof Promise ? await r : r)) guard();
  }
}

function publish(words: Int32Array, index: number, value: number): void {
  Atomics.store(words, index, value);
  futex.notify(words, index);
}

async function produce(wait: Sleep, v: View, msg: Uint8Array, start: number, n: number, guard: () => void): Promise<void> {
  const slots = v.ring.length;
  const end = start + n;
  let tail = Atomics.load(v.words, TAIL);
  for (let i = start; i < end; i++) {
    if (i - tail >= slots) tail = await until(wait, v.words, TAIL, (t) => i - t < slots, guard);
    v.ring[i % slots]!.set(msg);
    publish(v.words, HEAD, i + 1);
  }
  await until(wait, v.words, TAIL, (t) => t === end, guard);
}

async function consume(wait: Sleep, v: View, into: Uint8Array, start: number, n: number, guard: () => void): Promise<void> {
  const slots = v.ring.length;
  const end = start + n;
  let head = Atomics.load(v.words, HEAD);
  for (let j = start; j < end; j++) {
    if (j >= head) head = await until(wait, v.words, HEAD, (h) => j < h, guard);
    into.set(v.ring[j % slots]!);
    publish(v.words, TAIL, j + 1);
  }
}

function driverFor(wait: Sleep) {
  return async (ctx: DriverContext): Promise<TrialResult> => {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    using region = shm.anonymous(layout(size).bytes, { name: 'ipckit-bench' });
    const v = view(region.buffer, size);
    const echo = ctx.startEcho({ fds: [region.fd] });
    await unlessExited(
      (async () => {
        while (Atomics.load(v.words, READY) === 0) await sleep(1);
      })(),
      echo.exited,
    );
    const msg = payload(size);
    const reply = new Uint8Array(size);
    const rtt = new RttRecorder(warmup, count);
    for (let round = 1, last = false; !last; round++) {
      rtt.start();
      v.ping.set(msg);
      publish(v.words, PING, round);
      await until(wait, v.words, PONG, (p) => p === round, ctx.guard);
      reply.set(v.pong);
      last = rtt.stop();
    }
    await produce(wait, v, msg, 0, onewayWarmup, ctx.guard);
    const t0 = process.hrtime.bigint();
    await produce(wait, v, msg, onewayWarmup, onewayCount, ctx.guard);
    const onewayNs = Number(process.hrtime.bigint() - t0);
    await echo.exited;
    return { rttNs: rtt.samples, onewayNs };
  };
}

function echoFor(wait: Sleep) {
  return async (ctx: EchoContext): Promise<void> => {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    using region = shm.fromFd(3);
    const v = view(region.buffer, size);
    const scratch = new Uint8Array(size);
    Atomics.store(v.words, READY, 1);
    for (let round = 1, rounds = warmup + count; round <= rounds; round++) {
      await until(wait, v.words, PING, (p) => p === round, ctx.guard);
      scratch.set(v.ping);
      v.pong.set(scratch);
      publish(v.words, PONG, round);
    }
    await consume(wait, v, scratch, 0, onewayWarmup, ctx.guard);
    await consume(wait, v, scratch, onewayWarmup, onewayCount, ctx.guard);
  };
}

export const futexSync: BenchCase = {
  transport: 'futex-sync',
  description: 'ipckit shared memory (memfd); both processes sleep in futex.wait (blocking, worker style) between messages',
  driver: driverFor(sleepSync),
  echo: echoFor(sleepSync),
};

export const futexAsync: BenchCase = {
  transport: 'futex-async',
  description: 'ipckit shared memory (memfd); both processes await futex.waitAsync (native waiter thread, event loop free)',
  driver: driverFor(sleepAsync),
  echo: echoFor(sleepAsync),
};
