// The benchmark harness: runs every (transport, size) trial in fresh child
// processes, one trial at a time, and prints a table or JSON.
//
// The harness itself stays idle while a trial runs (on a 2-core machine a
// busy harness would steal a core from the peers). Each driver runs in its
// own process group, so a timeout or Ctrl-C ends the driver and its echo
// together; the peers also exit by themselves when their parent disappears.
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatMarkdown, formatSize, formatTable, wakeUpLine } from './format.js';
import { ProgressBar } from './progress.js';
import { htmlReport } from './report.js';
import { combineTrials } from './stats.js';
import { allowedCpus, hasTaskset, machineInfo, machineLine, type MachineInfo } from './machine.js';
import { CASES, COMPARE_CASES, findCase } from './registry.js';
import { sweepTrial } from './trial-files.js';
import type { BenchCase, BenchRow, SkippedRow, TrialParams } from './types.js';

export type { BenchRow, SkippedRow } from './types.js';

/** The measured rows, plus the `--compare` cases that were skipped and why (empty without them). */
export type BenchResult = BenchRow[] & { skipped: SkippedRow[] };

export interface BenchOptions {
  /** Case names (default: every case available on this machine). */
  transports?: string[];
  /**
   * Also run the `compare:*` cases (COMPARE_CASES: zeromq, node-ipc), after
   * the selected transports. A case whose package is not installed, or fails
   * to load, is skipped with one line on stderr and listed in `skipped`.
   */
  compare?: boolean;
  /** Payload sizes in bytes (default [64]). */
  sizes?: number[];
  /** Timed round trips per trial (default DEFAULT_COUNT); scaled down for large sizes, see trialParams(). */
  count?: number;
  /**
   * Trials per transport and size (default DEFAULT_TRIALS), each in fresh
   * processes, interleaved across transports; every figure in a row is the
   * median over its trials, so one disturbed trial does not move the table.
   */
  trials?: number;
  /** Print one JSON array of rows instead of the table. */
  json?: boolean;
  /** Print a Markdown table (for docs) instead of the box table. */
  markdown?: boolean;
  /** Pin the driver and the echo to different CPUs with taskset. Default false. */
  pin?: boolean;
  /** Print nothing; just return the rows. */
  quiet?: boolean;
  /** Also write a self-contained HTML report (table and charts) to this file. Written even when `quiet`. */
  report?: string;
  /** Give up on a trial after this long (default 120 s): its processes are killed. */
  timeoutMs?: number;
}

/** Chosen so the default run (4 transports × 3 trials, 64 B) takes about half a minute on the 2-core dev machine. */
export const DEFAULT_COUNT = 30_000;
export const DEFAULT_TRIALS = 3;
export const DEFAULT_SIZES = [64];
const DEFAULT_TIMEOUT_MS = 120_000;
/** Large messages get fewer rounds: at most this many bytes each way per phase... */
const PINGPONG_BYTES = 256 * 2 ** 20;
const ONEWAY_BYTES = 512 * 2 ** 20;
/** ...but never fewer than this many (unless asked for fewer). */
const MIN_ROUNDS = 100;

const peerPath = join(dirname(fileURLToPath(import.meta.url)), 'peer.js');

function scaled(count: number, bytes: number, size: number): number {
  return Math.max(Math.min(count, MIN_ROUNDS), Math.min(count, Math.floor(bytes / size)));
}

/** The numbers of one trial; see TrialParams for the protocol they drive. */
export function trialParams(
  transport: string,
  size: number,
  count: number,
  onewayFactor = 1,
  onewayMaxBytes?: number,
): Omit<TrialParams, 'workDir' | 'namePrefix'> {
  const rounds = scaled(count, PINGPONG_BYTES, size);
  const wanted = Math.min(count * onewayFactor, 1e9);
  const oneway =
    onewayMaxBytes === undefined
      ? scaled(wanted, ONEWAY_BYTES, size)
      : Math.max(1, Math.min(wanted, Math.floor(onewayMaxBytes / size)));
  const warm = (n: number) => Math.min(10_000, Math.max(10, Math.floor(n / 10)));
  // One-way: half the timed batch. Streaming reaches its steady state (JIT
  // tiers, kept blocks, each process settled on a core of its own) later
  // than a round trip: with a tenth capped at 10,000, channel:shm-each at
  // 64 B measured 9.1-9.4 M msg/s against 11.4 M with half and 13.6 M with all.
  return { transport, size, warmup: warm(rounds), count: rounds, onewayWarmup: Math.max(10, Math.floor(oneway / 2)), onewayCount: oneway };
}

function checkCount(n: unknown, what: string, max: number): number {
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 1 || n > max) {
    throw new RangeError(`${what} must be an integer from 1 to ${max}, got ${String(n)}`);
  }
  return n;
}

/**
 * The cases to run, in order. Unavailable ones are left out with a line on
 * stderr in the default run, and always when they measure an optional
 * package (those also come back in `skipped`); a case named explicitly that
 * cannot run here is an error.
 */
function selectCases(transports: string[] | undefined, compare: boolean | undefined): { cases: BenchCase[]; skipped: SkippedRow[] } {
  const explicit = transports !== undefined && transports.length > 0;
  const named = explicit
    ? transports.map((name) => {
        const c = findCase(name);
        if (!c) throw new RangeError(`unknown transport '${name}'; known: ${[...CASES, ...COMPARE_CASES].map((k) => k.transport).join(', ')}`);
        return c;
      })
    : [...CASES];
  const wanted = compare ? [...named, ...COMPARE_CASES.filter((c) => !named.includes(c))] : named;
  const skipped: SkippedRow[] = [];
  const cases = wanted.filter((c) => {
    const why = c.unavailable?.();
    if (!why) return true;
    if (explicit && !c.optionalPackage) throw new Error(`${c.transport} cannot run here: ${why}`);
    process.stderr.write(`bench: skipping ${c.transport}: ${why}\n`);
    if (c.optionalPackage) skipped.push({ transport: c.transport, skipped: why });
    return false;
  });
  return { cases, skipped };
}

function pinning(pin: boolean | undefined): { driverCpu: number; echoCpu: number } | undefined {
  if (!pin) return undefined;
  if (!hasTaskset()) throw new Error('--pin needs taskset (Debian package util-linux)');
  const cpus = allowedCpus();
  return { driverCpu: cpus[0], echoCpu: cpus.length > 1 ? cpus[1] : cpus[0] };
}

/** A running driver whose process group we may have to end. */
interface Active {
  child: ChildProcess;
  params: TrialParams;
  benchCase: BenchCase;
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL'); // the driver leads its own group (detached)
  } catch {
    /* already gone */
  }
}

function cleanUp(active: Active): void {
  killGroup(active.child);
  sweepTrial(active.params);
  active.benchCase.cleanup?.(active.params);
}

/**
 * Settles once the driver has exited and every holder of its output pipes
 * (the echo inherits its stderr) is gone, so a settled trial has no
 * processes left, whether it finished, failed or timed out.
 */
function runTrial(active: Active, timeoutMs: number): Promise<BenchRow> {
  const { child, params } = active;
  const what = `${params.transport} (${formatSize(params.size)})`;
  return new Promise<BenchRow>((resolve, reject) => {
    let out = '';
    let err = '';
    let timedOut = false;
    child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr?.setEncoding('utf8').on('data', (s: string) => (err = (err + s).slice(-8192)));
    const timer = setTimeout(() => {
      timedOut = true;
      killGroup(child);
    }, timeoutMs);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (timedOut) {
        reject(new Error(`${what} did not finish within ${timeoutMs / 1000} s; its processes were killed`));
      } else if (code !== 0) {
        reject(new Error(`${what} failed (${signal ?? `status ${code}`}):\n${err.trim()}`));
      } else {
        try {
          resolve(JSON.parse(out) as BenchRow);
        } catch {
          reject(new Error(`${what} printed no result:\n${out}${err}`));
        }
      }
    });
  });
}

function startDriver(params: TrialParams): ChildProcess {
  const argv = [peerPath, 'driver', params.transport, JSON.stringify(params)];
  const [cmd, args] =
    params.driverCpu === undefined
      ? [process.execPath, argv]
      : ['taskset', ['-c', String(params.driverCpu), process.execPath, ...argv]];
  // The driver checks it is still our child through IPCKIT_BENCH_PARENT (peer.ts).
  const env = { ...process.env, IPCKIT_BENCH_PARENT: String(process.pid) };
  return spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env, detached: true });
}

/**
 * Runs the benchmarks and returns one row per (transport, size), in registry
 * order (or the order of `transports`, then the compare cases) then size
 * order, with the skipped compare cases in `.skipped`. Prints the table (or
 * JSON, skipped cases included) unless `quiet`.
 */
export async function runBench(options: BenchOptions = {}): Promise<BenchResult> {
  const sizes = (options.sizes && options.sizes.length ? options.sizes : DEFAULT_SIZES).map((s) =>
    checkCount(s, 'size', 1 << 30),
  );
  const count = checkCount(options.count ?? DEFAULT_COUNT, 'count', 100_000_000);
  const trials = checkCount(options.trials ?? DEFAULT_TRIALS, 'trials', 1000);
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const { cases, skipped } = selectCases(options.transports, options.compare);
  const pin = pinning(options.pin);
  const machine = machineInfo(pin);
  const started = new Date();
  // stderr only, and only for a person watching: never in pipes, logs or --json's stdout.
  const showProgress = !options.quiet && process.stderr.isTTY;

  // Whatever happens to the harness, end the running trial's processes and files.
  let active: Active | null = null;
  const onExit = () => active && cleanUp(active);
  const onSignal = (signal: NodeJS.Signals) => {
    onExit();
    process.off(signal, onSignal);
    process.kill(process.pid, signal);
  };
  process.on('exit', onExit);
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  // Trial t of every (transport, size) runs before trial t+1 of any, so a
  // burst of load elsewhere on the machine hits all transports alike.
  const plan = cases.flatMap((benchCase) =>
    sizes
      .filter((size) => {
        const why = benchCase.unavailable?.(size);
        if (why) process.stderr.write(`bench: skipping ${benchCase.transport} at ${size} bytes: ${why}\n`);
        return !why;
      })
      .map((size) => ({ benchCase, size, results: [] as BenchRow[] })),
  );
  const total = plan.length * trials;
  const bar = showProgress ? new ProgressBar(total) : null;
  let done = 0;
  try {
    for (let t = 0; t < trials; t++) {
      for (const entry of plan) {
        const { benchCase, size } = entry;
        bar?.update(done, `${benchCase.transport} ${formatSize(size)} (trial ${t + 1}/${trials})`);
        const id = `ipckit-bench-${process.pid}-${randomBytes(4).toString('hex')}`;
        const params: TrialParams = {
          ...trialParams(benchCase.transport, size, count, benchCase.onewayFactor, benchCase.onewayMaxBytes),
          workDir: mkdtempSync(join(tmpdir(), `${id}-`)),
          namePrefix: id,
          ...(pin ?? {}),
        };
        const trial: Active = { child: startDriver(params), params, benchCase };
        active = trial;
        try {
          entry.results.push(await runTrial(trial, timeoutMs));
          done++;
        } finally {
          cleanUp(trial);
          active = null;
        }
      }
    }
  } finally {
    bar?.clear();
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }

  const rows: BenchResult = Object.assign(
    plan.map((entry) => combineTrials(entry.results)),
    { skipped },
  );
  if (options.report) {
    writeFileSync(options.report, htmlReport({ rows, machine: machineLine(machine), method: method(count, trials), date: started }));
  }
  if (!options.quiet) process.stdout.write(`${render(rows, machine, count, trials, options)}\n`);
  return rows;
}

function method(count: number, trials: number): string {
  return (
    `${trials} trial${trials === 1 ? '' : 's'} per row, each in fresh processes, ${count.toLocaleString('en-US')} timed round trips per trial ` +
    `(fewer for large sizes), warm-up excluded; each figure is the median over the trials`
  );
}

function render(rows: BenchResult, machine: MachineInfo, count: number, trials: number, options: BenchOptions): string {
  if (options.json) return JSON.stringify([...rows, ...rows.skipped], null, 2);
  const header = [machineLine(machine), method(count, trials), wakeUpLine(rows)].filter(Boolean).join('\n');
  return `${header}\n\n${options.markdown ? formatMarkdown(rows) : formatTable(rows)}`;
}
