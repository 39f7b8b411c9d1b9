// The contract between the benchmark harness (run.ts), the generic peer
// process (peer.ts) and the cases (cases/*.ts). A case only ever runs inside
// fresh child processes: the harness starts a *driver* process, the driver
// starts an *echo* process, and the two talk over the transport under test.
import type { ChildProcess } from 'node:child_process';

/** One line of the results: the shape `ipckit bench --json` prints. */
export interface BenchRow {
  /** Case name: `shm-atomics`, `baseline:net-unix`, ... */
  transport: string;
  /** Payload bytes per message. */
  size: number;
  /** Median round trip (driver → echo → driver), microseconds. */
  rttMedianUs: number;
  /** 99th percentile round trip (nearest rank), microseconds. */
  rttP99Us: number;
  /** One-way throughput driver → echo, messages per second. */
  msgsPerSec: number;
  /** One-way throughput in MB/s (10^6 bytes per second). */
  mbPerSec: number;
}

/** A case that did not run: `--json` prints it among the rows, with the reason. */
export interface SkippedRow {
  transport: string;
  /** Why, e.g. 'zeromq is not installed'. */
  skipped: string;
}

/**
 * What one trial runs, chosen by the harness and passed to both peers. The
 * protocol every case follows, in this order, between the same two processes:
 *   1. `warmup` untimed round trips, then `count` timed round trips of `size` bytes;
 *   2. one-way: `onewayWarmup` messages then an acknowledgement (untimed),
 *      then `onewayCount` messages and an acknowledgement (timed, from the
 *      first send to the arrival of the acknowledgement).
 * Both sides know every number, so no case needs a control channel.
 */
export interface TrialParams {
  transport: string;
  size: number;
  warmup: number;
  count: number;
  onewayWarmup: number;
  onewayCount: number;
  /** A private directory for sockets, FIFOs and files; the harness removes it. */
  workDir: string;
  /**
   * Prefix for POSIX IPC names (use `posixName(params, tag)`): the harness
   * removes /dev/shm/PREFIX*, /dev/shm/sem.PREFIX* and /dev/mqueue/PREFIX*
   * after the trial, even when a peer crashed.
   */
  namePrefix: string;
  /** CPU the driver / echo is pinned to (taskset -c), when pinning. */
  driverCpu?: number;
  echoCpu?: number;
}

/** What a driver measured. The peer process turns it into a BenchRow. */
export interface TrialResult {
  /** Nanoseconds of each timed round trip (exactly params.count entries). */
  rttNs: Float64Array;
  /** Nanoseconds from the first timed one-way send to the acknowledgement. */
  onewayNs: number;
}

export interface EchoOptions {
  /** Descriptors the echo inherits; they appear there as fd 3, 4, ... in this order. */
  fds?: number[];
  /** Give the echo a Node IPC channel (process.send) with this serialization. */
  ipc?: 'json' | 'advanced';
}

export interface EchoHandle {
  child: ChildProcess;
  /** Resolves when the echo exits with status 0; rejects otherwise. */
  exited: Promise<void>;
}

export interface DriverContext {
  params: TrialParams;
  /** Starts the echo peer for this case (pinned when the run pins). Call once. */
  startEcho(options?: EchoOptions): EchoHandle;
  /**
   * Call from busy-wait loops every million or so spins: throws when the echo
   * died and exits when the harness died, so a spinning peer never outlives
   * its run. Event-driven code does not need it.
   */
  guard(): void;
}

export interface EchoContext {
  params: TrialParams;
  /** Exits when the driver died. Call from busy-wait loops like DriverContext.guard. */
  guard(): void;
}

/** A benchmark case. See the comment at the top of registry.ts for how to add one. */
export interface BenchCase {
  /** The name in rows, tables and `--transports`. Baselines start with `baseline:`. */
  transport: string;
  /** One line for `--list` and docs/bench.md. */
  description: string;
  /**
   * Multiplies `count` for the one-way phase (the byte budget still caps it).
   * A transport moving ~10 M msg/s is done with 30,000 messages in 3 ms,
   * less than one scheduler time slice: one preemption would decide the
   * figure. Default 1.
   */
  onewayFactor?: number;
  /**
   * Bytes of each one-way phase instead of the harness's 512 MiB, without
   * its floor of 100 messages (at least one is sent): lower for a transport
   * whose cost grows faster than the length of a burst (compare:node-ipc),
   * higher for one that moves 512 MiB in less time than it takes to settle
   * (the shm: channel cases). Default: the harness's.
   */
  onewayMaxBytes?: number;
  /**
   * Why the case cannot run on this machine (e.g. no `cc`), or undefined when
   * it can. Called without a size for the case as a whole, and with each
   * requested size (e.g. a message larger than a queue's system limit).
   * Runs in the harness.
   */
  unavailable?(size?: number): string | undefined;
  /**
   * The npm package this case measures when it is not ipckit (`--compare`:
   * zeromq, node-ipc). Such a package is no dependency of ipckit: while
   * `unavailable()` says it is missing or fails to load, the case is skipped
   * with its reason (one line on stderr, a `skipped` entry in --json), even
   * when named in `transports`, instead of failing the run.
   */
  optionalPackage?: string;
  /** Runs in the driver process: set up, startEcho(), measure, tear down. */
  driver(ctx: DriverContext): Promise<TrialResult>;
  /** Runs in the echo process: answer the protocol described at TrialParams, then return. */
  echo(ctx: EchoContext): Promise<void>;
  /** Runs in the harness after every trial, even a crashed one: remove what the name prefix sweep cannot (System V ids, ...). */
  cleanup?(params: TrialParams): void;
}
