// baseline:c-shm and baseline:c-unix: what two C processes get from the same
// mechanisms, the floor every ipckit figure is measured against. The Node
// driver compiles c-pingpong.ts into the trial's private directory (the
// harness removes it), runs it, and turns its printed samples into the same
// TrialResult as every other case. The program forks its own echo, so these
// cases never start a Node echo.
import { spawn, spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
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

function cDriver(mode: 'shm' | 'unix') {
  return async (ctx: DriverContext): Promise<TrialResult> => {
    const p = ctx.params;
    const bin = compile(p.workDir);
    const args = [mode, p.size, p.warmup, p.count, p.onewayWarmup, p.onewayCount, p.driverCpu ?? -1, p.echoCpu ?? -1].map(String);
    // The driver's process group holds this child too: a timed-out trial kills it with the driver.
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const status = await new Promise<number | string>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (code, signal) => resolve(signal ?? code ?? -1));
    });
    if (status !== 0) throw new Error(`baseline:c-${mode}: C peer exited with ${status}`);
    return parseCOutput(out, p.count);
  };
}

async function noEcho(): Promise<void> {
  throw new Error('C baselines fork their own echo; no Node echo is started');
}

export const cShm: BenchCase = {
  transport: 'baseline:c-shm',
  description: 'two C processes, MAP_SHARED|MAP_ANONYMOUS mapping made before fork, spinning on C11 atomics (no sched_yield); compiled with cc',
  unavailable: noCompiler,
  driver: cDriver('shm'),
  echo: noEcho,
};

export const cUnix: BenchCase = {
  transport: 'baseline:c-unix',
  description: 'two C processes over a SOCK_STREAM socketpair, blocking read/write; compiled with cc',
  unavailable: noCompiler,
  driver: cDriver('unix'),
  echo: noEcho,
};
