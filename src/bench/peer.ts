// The one program every benchmark process runs:
//   node peer.js driver|echo TRANSPORT PARAMS_JSON
// The harness starts the driver (its stdout carries one JSON result line);
// the driver starts the echo through DriverContext.startEcho. Both are fresh
// processes for every trial, and both give up as soon as the process that
// started them is gone, so nothing outlives a killed run.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { findCase } from './registry.js';
import { summarize } from './stats.js';
import { sweepTrial } from './trial-files.js';
import type { DriverContext, EchoContext, EchoHandle, EchoOptions, TrialParams } from './types.js';

const peerPath = fileURLToPath(import.meta.url);
/**
 * The pid of the process that started us, told explicitly: if it died while
 * we were still starting, process.ppid would already name our new parent.
 */
const PARENT_ENV = 'IPCKIT_BENCH_PARENT';
const parentPid = Number(process.env[PARENT_ENV]) || process.ppid;
/** Timers cover event-driven waits; spinning code calls guard() itself. */
const PARENT_CHECK_MS = 250;

/** Whether `pid` (our child) has exited: gone, or a zombie we have not reaped because we are spinning. */
function childGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state === 'Z' || state === 'X';
  } catch {
    return true;
  }
}

function parentGone(): boolean {
  return process.ppid !== parentPid;
}

function startEcho(params: TrialParams, options: EchoOptions = {}): EchoHandle {
  const fds = options.fds ?? [];
  const stdio: Array<'ignore' | 'inherit' | 'ipc' | number> = ['ignore', 'ignore', 'inherit', ...fds];
  if (options.ipc) stdio.push('ipc');
  const argv = [peerPath, 'echo', params.transport, JSON.stringify(params)];
  const [cmd, args] =
    params.echoCpu === undefined
      ? [process.execPath, argv]
      : ['taskset', ['-c', String(params.echoCpu), process.execPath, ...argv]];
  const env = { ...process.env, [PARENT_ENV]: String(process.pid) };
  const child = spawn(cmd, args, { stdio, env, serialization: options.ipc ?? 'json' });
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', (code, signal) =>
      code === 0 ? resolve() : reject(new Error(`${params.transport} echo peer exited with ${signal ?? `status ${code}`}`)),
    );
  });
  exited.catch(() => {}); // reported through whoever awaits it
  return { child, exited };
}

async function main(): Promise<void> {
  const [role, transport, json] = process.argv.slice(2);
  const benchCase = findCase(transport ?? '');
  if (!benchCase || (role !== 'driver' && role !== 'echo') || !json) {
    throw new Error(`usage: peer.js driver|echo TRANSPORT PARAMS_JSON (unknown transport '${transport}'?)`);
  }
  const params = JSON.parse(json) as TrialParams;

  if (role === 'echo') {
    const leave = () => process.exit(2);
    setInterval(() => parentGone() && leave(), PARENT_CHECK_MS).unref();
    const ctx: EchoContext = { params, guard: () => parentGone() && leave() };
    await benchCase.echo(ctx);
    process.exit(0);
  }

  // Driver: if the harness dies, clean up after ourselves (it cannot).
  const abandon = () => {
    sweepTrial(params);
    process.exit(2);
  };
  setInterval(() => parentGone() && abandon(), PARENT_CHECK_MS).unref();
  let echoPid = 0;
  const ctx: DriverContext = {
    params,
    startEcho(options) {
      if (echoPid) throw new Error(`${transport}: startEcho() called twice`);
      const handle = startEcho(params, options);
      echoPid = handle.child.pid ?? 0;
      return handle;
    },
    guard() {
      if (parentGone()) abandon();
      if (echoPid && childGone(echoPid)) throw new Error(`${transport}: the echo peer died`);
    },
  };
  const row = summarize(params, await benchCase.driver(ctx));
  process.stdout.write(`${JSON.stringify(row)}\n`, () => process.exit(0));
}

main().catch((e: unknown) => {
  process.stderr.write(`${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
  process.exit(1);
});
