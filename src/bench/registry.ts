// Every benchmark case `npm run bench` / `ipckit bench` knows, by transport name.
//
// HOW TO ADD A CASE (one new file plus one line here):
//   1. Create src/bench/cases/<name>.ts exporting a `BenchCase` (types.ts):
//        transport    the row name ('futex-sync', 'posix-mq', ...; baselines 'baseline:...');
//        driver(ctx)  runs in a fresh driver process: create the kernel objects
//                     (names from posixName(ctx.params, tag), files in
//                     ctx.params.workDir), ctx.startEcho({ fds?, ipc? }), then run the
//                     protocol documented at TrialParams: warm-up + timed round trips
//                     recorded with RttRecorder, an untimed one-way batch, a timed one,
//                     each acknowledged by the echo; return { rttNs, onewayNs };
//        echo(ctx)    runs in a fresh echo process: answer that protocol, then return
//                     once the driver is done (it closes/disconnects, or the last
//                     acknowledgement is shared memory the driver already saw);
//        unavailable  optional: a reason the case cannot run here (missing `cc`, ...);
//        cleanup      optional: runs in the harness after the trial, crashed or not, for
//                     what the automatic sweep misses (System V ids). The sweep already
//                     removes ctx.params.workDir and POSIX names with the trial's prefix.
//      Busy-wait loops must call ctx.guard() every ~10^6 spins (see shm-atomics.ts) so a
//      dead peer or harness never leaves a process spinning; event-driven code wraps its
//      waits in unlessExited(promise, echo.exited).
//   2. Import it below and append it to CASES. Order here is the order of the table.
//      A case measuring another library (optionalPackage) goes in COMPARE_CASES.
//   3. Run `npm run bench -- --transports <name> --count 1000` and extend docs/bench.md.
import { channelShm, channelShmBatch, channelShmEach, channelShmEachCopy, channelShmJson, channelShmNoSpin, channelShmShared, channelShmZeroCopy, channelTcp, channelUnix, channelUnixJson } from './cases/channel.js';
import { cFutexWake, cShm, cUnix } from './cases/c-baselines.js';
import { compareNodeIpc } from './cases/compare-node-ipc.js';
import { compareZeromq } from './cases/compare-zeromq.js';
import { forkAdvanced, forkJson } from './cases/fork-ipc.js';
import { futexAsync, futexSync } from './cases/futex.js';
import { netUnix } from './cases/net-unix.js';
import { baselineNatsPublish, baselineNatsRequest, channelJetStream, channelNats, channelNatsBatch } from './cases/nats.js';
import { shmAtomics } from './cases/shm-atomics.js';
import { posixMq, sysvMq } from './cases/mq.js';
import { PIPE_CASES } from './cases/pipes.js';
import type { BenchCase } from './types.js';

export const CASES: readonly BenchCase[] = [shmAtomics, netUnix, forkJson, forkAdvanced, cShm, cUnix, cFutexWake, posixMq, sysvMq, futexSync, futexAsync, ...PIPE_CASES, channelShm, channelShmNoSpin, channelShmShared, channelShmBatch, channelShmEach, channelShmEachCopy, channelShmZeroCopy, channelUnix, channelTcp, channelShmJson, channelUnixJson, baselineNatsRequest, baselineNatsPublish, channelNats, channelNatsBatch, channelJetStream];

/**
 * What `--compare` adds: the libraries a user would pick instead of ipckit,
 * measured in the same run when installed (they are not dependencies of
 * ipckit; each case names its package in `optionalPackage` and is skipped,
 * saying why, when it is absent). Not part of the default run.
 */
export const COMPARE_CASES: readonly BenchCase[] = [compareZeromq, compareNodeIpc];

/** The transport every ratio is computed against. */
export const REFERENCE_TRANSPORT = 'baseline:net-unix';

/**
 * Every ratio column of the table, in order: what Node gives you (net over a
 * Unix socket) and what C gets from shared memory. A column appears only when
 * its reference ran (baseline:c-shm needs `cc`).
 */
export const RATIO_REFERENCES: readonly string[] = [REFERENCE_TRANSPORT, 'baseline:c-shm'];

/**
 * The case whose half round trip is the machine's cross-core wake-up cost,
 * shown above the table (and in the HTML report) when it ran; with --json it
 * is just its row.
 */
export const WAKE_UP_TRANSPORT = 'baseline:c-futex-wake';

export function findCase(transport: string): BenchCase | undefined {
  return CASES.find((c) => c.transport === transport) ?? COMPARE_CASES.find((c) => c.transport === transport);
}
