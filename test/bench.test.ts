// The benchmark harness: every case produces a well-formed row from real
// processes, and nothing (processes, files, IPC names) outlives a run, even
// when the harness is killed or a peer hangs. No timing assertions: speed is
// judged by `npm run bench`, not by tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { parseSizes } from '../dist/bench/command.js';
import { CASES } from '../dist/bench/registry.js';
import { runBench, trialParams, type BenchRow } from '../dist/bench/run.js';
import { combineTrials } from '../dist/bench/stats.js';

const T = { timeout: 60_000 };
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const peerPath = join(root, 'dist', 'bench', 'peer.js');
const mainPath = join(root, 'dist', 'bench', 'main.js');

interface PeerProcess {
  pid: number;
  role: 'driver' | 'echo';
  workDir: string;
}

/** This checkout's live benchmark peer processes (found through /proc). */
function benchPeers(): PeerProcess[] {
  const found: Array<PeerProcess & { ppid: number }> = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      const i = argv.indexOf(peerPath);
      if (i < 0) continue;
      const [state, ppid] = readFileSync(`/proc/${entry}/stat`, 'latin1').split(') ')[1].split(' ');
      if (state === 'Z') continue;
      found.push({ pid: Number(entry), ppid: Number(ppid), role: argv[i + 1] as PeerProcess['role'], workDir: JSON.parse(argv[i + 3]).workDir });
    } catch {
      continue; // exited while we looked
    }
  }
  // Between fork and exec, a starting echo still shows its driver's command line.
  return found
    .filter((p) => !(p.role === 'driver' && found.some((q) => q.pid === p.ppid)))
    .map(({ pid, role, workDir }) => ({ pid, role, workDir }));
}

/** Leftovers of runs by harness `pid`: temp dirs and POSIX names carry `ipckit-bench-PID-`. */
function leftovers(pid: number): string[] {
  const prefix = `ipckit-bench-${pid}-`;
  const list = (dir: string) => {
    try {
      return readdirSync(dir).filter((n) => n.startsWith(prefix) || n.startsWith(`sem.${prefix}`)).map((n) => join(dir, n));
    } catch {
      return [];
    }
  };
  return [...list(tmpdir()), ...list('/dev/shm'), ...list('/dev/mqueue')];
}

/** Waits for a condition on the process table; ends with the test (its timeout is the watchdog). */
async function until<T>(signal: AbortSignal, probe: () => T | undefined | false): Promise<T> {
  for (;;) {
    const v = probe();
    if (v) return v;
    await sleep(20, undefined, { signal });
  }
}

function killQuietly(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    /* gone */
  }
}

function assertRow(row: BenchRow, transport: string, size: number): void {
  assert.deepEqual(Object.keys(row).sort(), ['mbPerSec', 'msgsPerSec', 'rttMedianUs', 'rttP99Us', 'size', 'transport']);
  assert.equal(row.transport, transport);
  assert.equal(row.size, size);
  for (const key of ['rttMedianUs', 'rttP99Us', 'msgsPerSec', 'mbPerSec'] as const) {
    assert.ok(Number.isFinite(row[key]) && row[key] > 0, `${transport} ${key} = ${row[key]}`);
  }
  assert.ok(row.rttP99Us >= row.rttMedianUs, `${transport}: p99 below median`);
}

describe('bench harness', () => {
  test('every registered case yields a well-formed row from fresh processes, and leaves nothing', T, async () => {
    const rows = await runBench({ count: 200, trials: 1, quiet: true });
    const expected = CASES.filter((c) => !c.unavailable?.()).map((c) => c.transport);
    assert.ok(expected.includes('shm-atomics') && expected.includes('baseline:net-unix'));
    assert.deepEqual(
      rows.map((r) => r.transport),
      expected,
    );
    for (const row of rows) assertRow(row, row.transport, 64);
    assert.deepEqual(benchPeers(), []);
    assert.deepEqual(leftovers(process.pid), []);
  });

  test('several sizes and trials give one row per transport and size', T, async () => {
    const rows = await runBench({ transports: ['shm-atomics', 'baseline:net-unix'], sizes: [1, 4096], count: 100, trials: 2, quiet: true });
    assert.deepEqual(
      rows.map((r) => [r.transport, r.size]),
      [
        ['shm-atomics', 1],
        ['shm-atomics', 4096],
        ['baseline:net-unix', 1],
        ['baseline:net-unix', 4096],
      ],
    );
    for (const row of rows) assertRow(row, row.transport, row.size);
    assert.deepEqual(leftovers(process.pid), []);
  });

  test('--json prints exactly one array of rows', T, async () => {
    const child = spawn(process.execPath, [mainPath, '--transports', 'baseline:net-unix', '--count', '100', '--trials', '1', '--json'], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
    const code = await new Promise((resolve) => child.on('close', resolve));
    assert.equal(code, 0);
    const rows = JSON.parse(out) as BenchRow[];
    assert.equal(rows.length, 1);
    assertRow(rows[0], 'baseline:net-unix', 64);
  });

  test('bad options are refused before any process starts', T, async () => {
    await assert.rejects(runBench({ transports: ['no-such-thing'], quiet: true }), /unknown transport 'no-such-thing'.*shm-atomics/);
    await assert.rejects(runBench({ sizes: [0], quiet: true }), RangeError);
    await assert.rejects(runBench({ count: 1.5, quiet: true }), RangeError);
    await assert.rejects(runBench({ trials: 0, quiet: true }), RangeError);
    assert.deepEqual(parseSizes('64,4k,64KiB,1m'), [64, 4096, 65536, 1048576]);
    assert.throws(() => parseSizes('64,x'), /not a size/);
    assert.deepEqual(benchPeers(), []);
  });

  test('trials combine figure by figure into their median', T, () => {
    const row = (rtt: number, rate: number): BenchRow => ({ transport: 'x', size: 64, rttMedianUs: rtt, rttP99Us: rtt * 2, msgsPerSec: rate, mbPerSec: (rate * 64) / 1e6 });
    assert.deepEqual(combineTrials([row(90, 1000), row(20, 3000), row(21, 2000)]), row(21, 2000));
  });

  test('large messages get fewer rounds, small counts are honoured', T, () => {
    assert.equal(trialParams('x', 64, 100_000).count, 100_000);
    assert.equal(trialParams('x', 1 << 20, 100_000).count, 256);
    assert.equal(trialParams('x', 1 << 30, 100_000).count, 100);
    assert.equal(trialParams('x', 1 << 20, 5).count, 5);
    assert.equal(trialParams('x', 64, 1000, 20).onewayCount, 20_000);
    assert.equal(trialParams('x', 1 << 20, 1000, 20).onewayCount, 512);
    const p = trialParams('x', 64, 10);
    assert.ok(p.warmup >= 1 && p.onewayWarmup >= 1 && p.onewayCount === 10);
  });

  test('a hung trial is killed at its timeout with its files', T, async (t) => {
    // Stopping the echo makes the spinning driver wait forever.
    const run = runBench({ transports: ['shm-atomics'], count: 2_000_000, trials: 1, timeoutMs: 4000, quiet: true });
    const outcome = run.then(
      () => 'finished',
      (e: Error) => e.message,
    );
    const echo = await until(t.signal, () => benchPeers().find((p) => p.role === 'echo'));
    killQuietly(echo.pid, 'SIGSTOP');
    try {
      assert.match(await outcome, /did not finish within 4 s/);
      assert.deepEqual(benchPeers(), []);
      assert.deepEqual(leftovers(process.pid), []);
    } finally {
      killQuietly(echo.pid, 'SIGKILL');
    }
  });

  test('killing the harness mid-trial: the peers notice, exit and clean up by themselves', T, async (t) => {
    const harness = spawn(process.execPath, [mainPath, '--transports', 'shm-atomics', '--count', '2000000', '--trials', '1', '--json'], {
      stdio: 'ignore',
    });
    let peers: PeerProcess[] = [];
    try {
      peers = await until(t.signal, () => {
        const p = benchPeers();
        return p.some((x) => x.role === 'driver') && p.some((x) => x.role === 'echo') && p;
      });
      const driver = peers.find((p) => p.role === 'driver')!;
      const echo = peers.find((p) => p.role === 'echo')!;
      // With the echo stopped the driver can never finish on its own: only
      // noticing that its parent died ends it.
      killQuietly(echo.pid, 'SIGSTOP');
      harness.kill('SIGKILL');
      await until(t.signal, () => !benchPeers().some((p) => p.pid === driver.pid));
      assert.deepEqual(leftovers(harness.pid!), [], 'the driver removes the trial directory');
      // Resumed, the echo finds its driver gone instead of spinning forever.
      killQuietly(echo.pid, 'SIGCONT');
      await until(t.signal, () => benchPeers().length === 0);
    } finally {
      for (const p of peers) killQuietly(p.pid, 'SIGKILL');
      harness.kill('SIGKILL');
    }
  });
});
