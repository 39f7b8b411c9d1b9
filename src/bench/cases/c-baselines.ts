// baseline:c-shm and baseline:c-unix: what two C processes get from the same
// mechanisms, the floor every ipckit figure is measured against; and
// baseline:c-futex-wake, what one cross-core wake-up costs on this machine,
// which every transport that sleeps between messages pays. The Node
// driver compiles c-pingpong.ts into the trial's private directory (the
// harness removes it), runs it, and turns its printed samples into the same
// TrialResult as every other case. The program forks its own echo, so these
// cases never start a Node echo.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { allowedCpus } from '../machine.js';
import type { BenchCase, DriverContext, TrialResult } from '../types.js';
import { C_PINGPONG_SOURCE } from './c-pingpong.js';

let ccMissing: string | undefined | null = null;

/** Why C baselines cannot run here (no `cc`), checked once per process. */
function noCompiler(): string | undefined {
  if (ccMissing === null) {
    const found = spawnSync('sh', ['-c', 'command -v cc'], { stdio: 'ignore' }).status === 0;
    ccMissing = found ? undefined : 'no C compiler (`cc`) on PATH';
  }
  return ccMissing;
}

function compile(workDir: string): string {
  const src = join(workDir, 'pingpong.c');
  const bin = join(workDir, 'pingpong');
  writeFileSync(src, C_PINGPONG_SOURCE);
  const cc = spawnSync('cc', ['-O2', '-std=c11', '-o', bin, src], { encoding: 'utf8' });
  if (cc.status !== 0) throw new Error(`cc failed:\n${cc.stderr}${cc.error ?? ''}`);
  return bin;
}

/** Parses `NS\n` × count then `oneway NS`. */
export function parseCOutput(out: string, count: number): TrialResult {
  const lines = out.trim().split('\n');
  const last = /^oneway (\d+)$/.exec(lines.pop() ?? '');
  if (!last || lines.length !== count) throw new Error(`C peer printed ${lines.length} samples (expected ${count}) or no oneway line`);
  return { rttNs: Float64Array.from(lines, Number), onewayNs: Number(last[1]) };
}

/**
 * Where the futex ping-pong runs: the CPUs --pin chose, else the first two
 * this process may use. Always two different CPUs (when there are two), so
 * every wake-up crosses cores: unpinned, the scheduler often wakes the
 * sleeper on the waker's CPU, a cheaper wake-up than two communicating
 * processes can count on.
 */
export function crossCorePair(driverCpu: number | undefined, echoCpu: number | undefined): [number, number] {
  if (driverCpu !== undefined && echoCpu !== undefined) return [driverCpu, echoCpu];
  const cpus = allowedCpus();
  return cpus.length > 1 ? [cpus[0]!, cpus[1]!] : [-1, -1];
}

function cDriver(transport: string, mode: 'shm' | 'unix' | 'futex') {
  return async (ctx: DriverContext): Promise<TrialResult> => {
    const p = ctx.params;
    const bin = compile(p.workDir);
    const [driverCpu, echoCpu] = mode === 'futex' ? crossCorePair(p.driverCpu, p.echoCpu) : [p.driverCpu ?? -1, p.echoCpu ?? -1];
    const args = [mode, p.size, p.warmup, p.count, p.onewayWarmup, p.onewayCount, driverCpu, echoCpu].map(String);
    // The driver's process group holds this child too: a timed-out trial kills it with the driver.
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const status = await new Promise<number | string>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(signal ?? code ?? -1));
    });
    if (status !== 0) throw new Error(`${transport}: C peer exited with ${status}`);
    return parseCOutput(out, p.count);
  };
}

async function noEcho(): Promise<void> {
  throw new Error('C baselines fork their own echo; no Node echo is started');
}

export const cShm: BenchCase = {
  transport: 'baseline:c-shm',
  description: 'two C processes, MAP_SHARED|MAP_ANONYMOUS mapping made before fork, spinning on C11 atomics (no sched_yield); compiled with cc',
  // As many one-way messages as the channel:shm cases send (30,000 64-byte messages pass in 2 ms).
  onewayFactor: 40,
  unavailable: noCompiler,
  driver: cDriver('baseline:c-shm', 'shm'),
  echo: noEcho,
};

export const cUnix: BenchCase = {
  transport: 'baseline:c-unix',
  description: 'two C processes over a SOCK_STREAM socketpair, blocking read/write; compiled with cc',
  unavailable: noCompiler,
  driver: cDriver('baseline:c-unix', 'unix'),
  echo: noEcho,
};

export const cFutexWake: BenchCase = {
  transport: 'baseline:c-futex-wake',
  description:
    'two C processes on two different CPUs, the c-shm layout, but each waiting side sleeps in FUTEX_WAIT until the other FUTEX_WAKEs it: half the round trip is one cross-core wake-up; compiled with cc',
  unavailable: noCompiler,
  driver: cDriver('baseline:c-futex-wake', 'futex'),
  echo: noEcho,
};
