// Keeps the two spinning sides of an shm: connection on different CPUs.
//
// A doorbell wake-up places the woken process on its waker's CPU (the
// kernel's wake-affine placement), and two processes that spin on one CPU
// hand it to each other with sched_yield: every look at the ring then waits
// for a context switch. Measured on a 2-CPU machine, both peers stayed on
// one CPU for whole runs (moving together), and a 4 KiB round trip took
// 21 us against 7.7 us with the two peers on two CPUs; 64 KiB 26 against 15.
// The scheduler's load balancing does part them, but the next doorbell puts
// them together again.
//
// So each side, while it spins with nothing arriving, writes the CPU it runs
// on into a word of its input ring's consumer line (the peer reads it there)
// and, seeing the peer on the same CPU while the peer spins too, moves itself
// off that CPU (native ringLeaveCpu: its affinity narrowed and at once
// restored, so only its position changes). At most once per interval per
// thread: the words are the peer's to write, and a peer that lies about its
// CPU costs this side two system calls per interval. The interval is
// MIN_INTERVAL_MS while moves are quick, and doubles, up to MAX_INTERVAL_MS,
// after each move that took longer than SLOW_MOVE_MS: the system call returns
// once the thread runs on its new CPU, so a slow one means that CPU was busy
// (more runnable processes than CPUs: moving gains nothing, and the event
// loop stood still while the thread waited for its turn there). On the idle
// 2-CPU dev VM a move took tens of microseconds, and the peers met on one
// CPU again within 10-40 ms (the next doorbell).
import { performance } from 'node:perf_hooks';
import { native } from '../core/native.js';

const MIN_INTERVAL_MS = 10;
const MAX_INTERVAL_MS = 1000;
const SLOW_MOVE_MS = 1;
/** When this thread last moved, and the wait before it may move again (per thread, as this module's state is per isolate). */
let lastMove = -Infinity;
let interval = MIN_INTERVAL_MS;

/**
 * Writes this thread's CPU to `i32[own]` (as CPU + 1) and, if `i32[peer]`
 * names the same CPU and the peer is not asleep, moves this thread off it.
 * True if it moved (the caller need not yield: it runs alone now).
 */
export function keepApart(i32: Int32Array, own: number, peer: number, peerSleeping: number): boolean {
  const cpu = native.ringCpu();
  if (cpu < 0) return false;
  Atomics.store(i32, own, cpu + 1);
  if (Atomics.load(i32, peer) !== cpu + 1 || Atomics.load(i32, peerSleeping) !== 0) return false;
  const start = performance.now();
  if (start - lastMove < interval) return false;
  const moved = native.ringLeaveCpu(cpu);
  lastMove = performance.now();
  interval = lastMove - start > SLOW_MOVE_MS ? Math.min(MAX_INTERVAL_MS, 2 * interval) : MIN_INTERVAL_MS;
  return moved;
}
