// shm-atomics: two Node processes share an anonymous ipckit region (memfd,
// handed to the echo as fd 3, so nothing has a name that could leak) and
// both sides busy-wait on Atomics.load. This is the floor for shared-memory
// messaging from JavaScript: no syscalls, no event loop, one core each.
//
// Layout: a 64-byte control block of Int32 words, then the ping slot, the
// pong slot and a ring of one-way slots, each slot rounded up to 64 bytes so
// the sides do not share cache lines.
import { setTimeout as sleep } from 'node:timers/promises';
import { shm } from '../../index.js';
import { payload, RttRecorder, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

const PING = 0; // round number the driver published
const PONG = 1; // round number the echo answered
const HEAD = 2; // one-way messages written (producer)
const TAIL = 3; // one-way messages consumed (consumer)
const READY = 4; // set by the echo once it has mapped the region
const CONTROL_BYTES = 64;
/** Guard every 2^20 spins: a few milliseconds. */
const GUARD_MASK = 0xfffff;
/** Ring of at most this many bytes (and 2..1024 slots). */
const RING_BYTES = 1 << 20;

interface Layout {
  slot: number;
  slots: number;
  bytes: number;
}

function layout(size: number): Layout {
  const slot = Math.ceil(Math.max(size, 1) / 64) * 64;
  const slots = Math.max(2, Math.min(1024, Math.floor(RING_BYTES / slot)));
  return { slot, slots, bytes: CONTROL_BYTES + slot * (2 + slots) };
}

interface View {
  words: Int32Array;
  ping: Uint8Array;
  pong: Uint8Array;
  ring: Uint8Array[];
}

function view(buffer: SharedArrayBuffer, size: number): View {
  const { slot, slots } = layout(size);
  const at = (i: number) => new Uint8Array(buffer, CONTROL_BYTES + slot * i, size);
  return {
    words: new Int32Array(buffer, 0, CONTROL_BYTES / 4),
    ping: at(0),
    pong: at(1),
    ring: Array.from({ length: slots }, (_, i) => at(2 + i)),
  };
}

/** Driver side of the ring: sends `n` messages, returns when all were consumed. */
function produce(v: View, msg: Uint8Array, start: number, n: number, guard: () => void): void {
  const { words, ring } = v;
  const slots = ring.length;
  const end = start + n;
  let tail = Atomics.load(words, TAIL);
  let spins = 0;
  for (let i = start; i < end; i++) {
    while (i - tail >= slots) {
      tail = Atomics.load(words, TAIL);
      if ((++spins & GUARD_MASK) === 0) guard();
    }
    ring[i % slots].set(msg);
    Atomics.store(words, HEAD, i + 1);
  }
  while (Atomics.load(words, TAIL) !== end) {
    if ((++spins & GUARD_MASK) === 0) guard();
  }
}

/** Echo side of the ring: receives `n` messages (copying each out). */
function consume(v: View, into: Uint8Array, start: number, n: number, guard: () => void): void {
  const { words, ring } = v;
  const slots = ring.length;
  const end = start + n;
  let head = Atomics.load(words, HEAD);
  let spins = 0;
  for (let j = start; j < end; j++) {
    while (j >= head) {
      head = Atomics.load(words, HEAD);
      if ((++spins & GUARD_MASK) === 0) guard();
    }
    into.set(ring[j % slots]);
    Atomics.store(words, TAIL, j + 1);
  }
}

async function driver(ctx: DriverContext): Promise<TrialResult> {
  const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
  using region = shm.anonymous(layout(size).bytes, { name: 'ipckit-bench' });
  const v = view(region.buffer, size);
  const echo = ctx.startEcho({ fds: [region.fd] });
  const guard = ctx.guard;

  // The echo needs tens of milliseconds to start: wait without stealing its core.
  await unlessExited(
    (async () => {
      while (Atomics.load(v.words, READY) === 0) await sleep(1);
    })(),
    echo.exited,
  );

  const msg = payload(size);
  const reply = new Uint8Array(size);
  const rtt = new RttRecorder(warmup, count);
  const { words, ping, pong } = v;
  let spins = 0;
  for (let round = 1, last = false; !last; round++) {
    rtt.start();
    ping.set(msg);
    Atomics.store(words, PING, round);
    while (Atomics.load(words, PONG) !== round) {
      if ((++spins & GUARD_MASK) === 0) guard();
    }
    reply.set(pong);
    last = rtt.stop();
  }

  produce(v, msg, 0, onewayWarmup, guard);
  const t0 = process.hrtime.bigint();
  produce(v, msg, onewayWarmup, onewayCount, guard);
  const onewayNs = Number(process.hrtime.bigint() - t0);

  await echo.exited;
  return { rttNs: rtt.samples, onewayNs };
}

async function echo(ctx: EchoContext): Promise<void> {
  const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
  using region = shm.fromFd(3);
  const v = view(region.buffer, size);
  const { words, ping, pong } = v;
  const guard = ctx.guard;
  const scratch = new Uint8Array(size);
  Atomics.store(words, READY, 1);

  let spins = 0;
  for (let round = 1, rounds = warmup + count; round <= rounds; round++) {
    while (Atomics.load(words, PING) !== round) {
      if ((++spins & GUARD_MASK) === 0) guard();
    }
    scratch.set(ping);
    pong.set(scratch);
    Atomics.store(words, PONG, round);
  }
  // The one-way acknowledgement is TAIL reaching the end of each batch.
  consume(v, scratch, 0, onewayWarmup, guard);
  consume(v, scratch, onewayWarmup, onewayCount, guard);
}

export const shmAtomics: BenchCase = {
  transport: 'shm-atomics',
  description: 'ipckit shared memory (memfd), both processes spin on Atomics.load; one-way through a ring of 64-byte-aligned slots',
  // ~10 M msg/s: 20× the messages so the one-way phase outlasts a time slice.
  onewayFactor: 20,
  driver,
  echo,
};
