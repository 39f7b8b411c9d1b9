// The benchmark harness: every case produces a well-formed row from real
// processes, and nothing (processes, files, IPC names) outlives a run, even
// when the harness is killed or a peer hangs. No timing assertions: speed is
// judged by `npm run bench`, not by tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { crossCorePair, parseCOutput } from '../../dist/bench/cases/c-baselines.js';
import { ZeroCopyMessages } from '../../dist/bench/cases/channel.js';
import { parseSizes } from '../../dist/cli/bench.js';
import { formatMarkdown, formatTable, wakeUpLine } from '../../dist/bench/format.js';
import { checksum } from '../../dist/bench/kit.js';
import { allowedCpus } from '../../dist/bench/machine.js';
import { progressLine } from '../../dist/bench/progress.js';
import { PACKAGES_ENV } from '../../dist/bench/optional-package.js';
import { CASES, COMPARE_CASES } from '../../dist/bench/registry.js';
import { htmlReport } from '../../dist/bench/report.js';
import { runBench, trialParams, type BenchRow } from '../../dist/bench/run.js';
import { combineTrials } from '../../dist/bench/stats.js';

import { has } from '../helpers.js';

const T = { timeout: 60_000 };
/**
 * npm run stress (test/stress/bench.stress.ts) runs every registered case
 * from fresh processes; npm test one case of each module of src/bench/cases/
 * (the harness around them is the same; two fresh processes per case made
 * the full list the suite's longest test).
 */
const EVERY_CASE = process.env.IPCKIT_BENCH_EVERY_CASE === '1';
const SAMPLE = ['shm-atomics', 'baseline:net-unix', 'baseline:fork-json', 'baseline:c-shm', 'posix-mq', 'futex-async', 'pipe', 'unix-stream', 'channel:shm', 'baseline:nats-request', 'channel:nats'];
/** The C baselines compile their peer with `cc`; without it they are unavailable and these tests are skipped. */
const CC = { ...T, skip: has('cc') ? false : 'no cc' };
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const peerPath = join(root, 'dist', 'bench', 'peer.js');
const cliPath = join(root, 'dist', 'cli', 'main.js');

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

/** Processes started by runs of harness `pid` from a trial directory (the compiled C peers). */
function trialBinaries(pid: number): number[] {
  const dir = join(tmpdir(), `ipckit-bench-${pid}-`);
  return readdirSync('/proc')
    .filter((e) => /^\d+$/.test(e))
    .filter((e) => {
      try {
        const state = readFileSync(`/proc/${e}/stat`, 'latin1').split(') ')[1][0];
        return state !== 'Z' && readFileSync(`/proc/${e}/cmdline`, 'utf8').startsWith(dir);
      } catch {
        return false;
      }
    })
    .map(Number);
}

/**
 * Checks that `html` is one well-formed document: every element closed in
 * order (void elements aside), nothing loaded from elsewhere, no script.
 */
function assertSelfContainedHtml(html: string): void {
  assert.ok(html.startsWith('<!DOCTYPE html>\n<html'), 'starts with a doctype');
  assert.doesNotMatch(html, /<script|<link|<img|<iframe|\ssrc=|\shref=|url\(|@import/i, 'nothing external, no script');
  const stack: string[] = [];
  for (const m of html.matchAll(/<(\/?)([a-zA-Z][\w-]*)[^>]*?(\/?)>/g)) {
    const [, closing, name, selfClosing] = m;
    if (selfClosing || ['meta', 'br'].includes(name.toLowerCase())) continue;
    if (closing) assert.equal(stack.pop(), name, `</${name}> closes the element last opened`);
    else stack.push(name);
  }
  assert.deepEqual(stack, [], 'every element is closed');
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

/** Runs `node script ...args` to the end: its exit status, stdout and stderr. */
async function run(script: string, args: string[]): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  return { code, out, err };
}

describe('bench harness', () => {
  test(`${EVERY_CASE ? 'every registered case' : 'a case of every case module'} yields a well-formed row from fresh processes, and leaves nothing`, { timeout: EVERY_CASE ? 300_000 : T.timeout }, async () => {
    const expected = CASES.filter((c) => !c.unavailable?.() && (EVERY_CASE || SAMPLE.includes(c.transport))).map((c) => c.transport);
    const rows = await runBench({ count: 200, trials: 1, quiet: true, ...(EVERY_CASE ? {} : { transports: expected }) });
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
    const child = spawn(process.execPath, [cliPath, 'bench', '--transports', 'baseline:net-unix', '--count', '100', '--trials', '1', '--json'], {
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

  test('a size over a queue system limit skips that row instead of failing the run', T, async () => {
    const limit = Number(readFileSync('/proc/sys/fs/mqueue/msgsize_max', 'utf8'));
    const rows = await runBench({ transports: ['posix-mq'], sizes: [64, limit + 1], count: 50, trials: 1, quiet: true });
    assert.deepEqual(rows.map((r) => [r.transport, r.size]), [['posix-mq', 64]]);
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
    // A case's own one-way byte cap goes below the 100-message floor, never below one message.
    assert.equal(trialParams('x', 64, 1000, 1, 4 << 20).onewayCount, 1000);
    assert.equal(trialParams('x', 65536, 1000, 1, 4 << 20).onewayCount, 64);
    assert.equal(trialParams('x', 8 << 20, 1000, 1, 4 << 20).onewayCount, 1);
    assert.equal(trialParams('x', 65536, 1000, 1, 4 << 20).count, 1000, 'round trips are not capped');
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
    const harness = spawn(process.execPath, [cliPath, 'bench', '--transports', 'shm-atomics', '--count', '2000000', '--trials', '1', '--json'], {
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

  test('C baselines: well-formed rows from compiled C peers, nothing left behind', CC, async () => {
    const rows = await runBench({ transports: ['baseline:c-shm', 'baseline:c-unix'], sizes: [64, 65536], count: 200, trials: 1, quiet: true });
    assert.deepEqual(
      rows.map((r) => [r.transport, r.size]),
      [
        ['baseline:c-shm', 64],
        ['baseline:c-shm', 65536],
        ['baseline:c-unix', 64],
        ['baseline:c-unix', 65536],
      ],
    );
    for (const row of rows) assertRow(row, row.transport, row.size);
    assert.deepEqual(trialBinaries(process.pid), []);
    assert.deepEqual(leftovers(process.pid), [], 'the compiled peer goes with the trial directory');
  });

  test('killing the harness during a C baseline: the C peers die with their driver', CC, async (t) => {
    // 5 million socket round trips would take minutes: only the kill ends it.
    const harness = spawn(process.execPath, [cliPath, 'bench', '--transports', 'baseline:c-unix', '--count', '5000000', '--trials', '1', '--json'], {
      stdio: 'ignore',
    });
    let seen: number[] = [];
    try {
      seen = await until(t.signal, () => {
        const c = trialBinaries(harness.pid!);
        return c.length === 2 && c; // the C driver and the echo it forked
      });
      harness.kill('SIGKILL');
      await until(t.signal, () => trialBinaries(harness.pid!).length === 0 && benchPeers().length === 0);
      await until(t.signal, () => leftovers(harness.pid!).length === 0);
    } finally {
      for (const pid of seen) killQuietly(pid, 'SIGKILL');
      harness.kill('SIGKILL');
    }
  });

  test('the C peer output is parsed strictly', T, () => {
    const r = parseCOutput('100\n250\n300\noneway 123456\n', 3);
    assert.deepEqual([...r.rttNs], [100, 250, 300]);
    assert.equal(r.onewayNs, 123456);
    assert.throws(() => parseCOutput('100\noneway 5\n', 3), /printed 1 samples/);
    assert.throws(() => parseCOutput('100\n200\n300\n', 3), /oneway/);
  });

  test('ratio columns: vs net-unix and vs c-shm, each only when its reference ran', T, () => {
    const row = (transport: string, rtt: number): BenchRow => ({ transport, size: 64, rttMedianUs: rtt, rttP99Us: rtt * 2, msgsPerSec: 1000, mbPerSec: 0.064 });
    const both = formatMarkdown([row('shm-atomics', 0.5), row('baseline:net-unix', 20), row('baseline:c-shm', 0.25)]).split('\n');
    assert.match(both[0], /\| RTT vs net-unix \| RTT vs c-shm \|$/);
    assert.equal(both[1], '|---|--:|--:|--:|--:|--:|---|---|');
    assert.match(both[2], /^\| shm-atomics \| 64 B \| .* \| 0\.025× \(40× faster\) \| 2\.0× \(2\.0× slower\) \|$/);
    assert.match(both[4], /\| 0\.013× \(80× faster\) \| 1× \(reference\) \|$/);
    const noC = formatTable([row('shm-atomics', 0.5), row('baseline:net-unix', 20)]);
    assert.match(noC, /RTT vs net-unix/);
    assert.doesNotMatch(noC, /c-shm/);
  });

  test('the progress line counts, estimates and never wraps', T, () => {
    assert.equal(progressLine(0, 4, 'tcp 64 B (trial 1/3)', 0, 80), '[--------------------] 0/4 tcp 64 B (trial 1/3)  0:00');
    assert.equal(progressLine(1, 4, 'tcp 64 B (trial 1/3)', 10_000, 80), '[#####---------------] 1/4 tcp 64 B (trial 1/3)  0:10, ~0:30 left');
    assert.equal(progressLine(1, 4, 'x'.repeat(200), 10_000, 60).length, 59);
  });

  test('--report writes a self-contained HTML file: machine line, table, charts per size', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-report-'));
    try {
      const file = join(dir, 'bench.html');
      const transports = ['shm-atomics', 'baseline:net-unix', ...(has('cc') ? ['baseline:c-shm'] : [])];
      // Through the CLI with --json: stdout stays one JSON array, stderr (not a TTY) gets no progress bar.
      const child = spawn(process.execPath, [cliPath, 'bench', '--transports', transports.join(','), '--size', '64,4k', '--count', '100', '--trials', '1', '--json', '--report', file], {
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      const code = await new Promise((resolve) => child.on('close', resolve));
      assert.equal(code, 0, err);
      assert.equal(err, '');
      const rows = JSON.parse(out) as BenchRow[];
      assert.equal(rows.length, transports.length * 2);
      for (const row of rows) assertRow(row, row.transport, row.size);

      const html = readFileSync(file, 'utf8');
      assertSelfContainedHtml(html);
      assert.match(html, /<p class="machine">[^<]*cores, Node v\d+[^<]*load average/);
      assert.equal(html.match(/<tbody>[\s\S]*<\/tbody>/)![0].match(/<tr/g)!.length, rows.length, 'one table row per result');
      assert.match(html, /<th>RTT vs net-unix<\/th>/);
      for (const size of ['64 B', '4 KiB']) {
        assert.match(html, new RegExp(`<h2>${size} messages</h2>\\s*<h3>Round trip[^<]*</h3>\\s*<svg[\\s\\S]*?</svg>\\s*<h3>One-way throughput[^<]*</h3>\\s*<svg`));
      }
      assert.equal(html.match(/<svg/g)!.length, 4, 'a latency and a throughput chart per size');
      // Every row has a median bar, a p99 bar and a throughput bar in its size's charts.
      assert.equal(html.match(/<rect /g)!.length, rows.length * 3);
      assert.deepEqual(leftovers(child.pid!), []);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('zero-copy checksum: every byte counts, wherever the view starts', T, () => {
    for (const size of [1, 3, 4, 5, 63, 64, 65, 4099]) {
      const bytes = Buffer.from(Array.from({ length: size }, (_, i) => (i * 31 + 7) & 0xff));
      const sum = checksum(bytes);
      // Ring views are not 4-byte aligned: the same bytes at any offset give the same sum.
      for (const offset of [1, 2, 3, 5]) {
        const view = new Uint8Array(new SharedArrayBuffer(size + 8), offset, size);
        view.set(bytes);
        assert.equal(checksum(view), sum, `size ${size} at offset ${offset}`);
      }
      for (let i = 0; i < size; i += size > 100 ? 97 : 1) {
        for (const delta of [1, 0x80, 0xff]) {
          const changed = Buffer.from(bytes);
          changed[i] = (changed[i]! + delta) & 0xff;
          assert.notEqual(checksum(changed), sum, `size ${size}: byte ${i} + ${delta} goes unnoticed`);
        }
      }
    }
  });

  test('zero-copy messages: every byte written, the sum known in advance, message numbers told apart', T, () => {
    for (const size of [1, 3, 4, 64, 4097]) {
      const messages = new ZeroCopyMessages(size);
      const view = new Uint8Array(new SharedArrayBuffer(size + 8), 5, size);
      for (const seq of [0, 1, 2, 1000, 2 ** 32 - 1]) {
        view.fill(0);
        messages.fill(view, seq);
        assert.equal(checksum(view), messages.expected(seq), `size ${size}, message ${seq}`);
        if (size >= 64) assert.ok(view.subarray(4).every((b, i) => b === (((i + 4) * 31 + 7) & 0xff)), 'the payload after the first word');
      }
      if (size >= 4) assert.notEqual(messages.expected(1), messages.expected(2));
      let total = 0;
      for (let seq = 0; seq < 10; seq++) total = (total + messages.expected(seq)) >>> 0;
      assert.equal(messages.expectedTotal(10), total);
    }
  });

  test('ipckit bench runs channel:shm-zerocopy with its checksums checked', T, async () => {
    const { code, out, err } = await run(cliPath, ['bench', '--transports', 'channel:shm-zerocopy', '--size', '4k', '--trials', '1', '--count', '200', '--json']);
    assert.equal(code, 0, err);
    const rows = JSON.parse(out) as BenchRow[];
    assert.equal(rows.length, 1);
    assertRow(rows[0], 'channel:shm-zerocopy', 4096);
    assert.deepEqual(leftovers(process.pid), []);
  });

  test('baseline:c-futex-wake: a row, and the cross-core wake-up cost above the table', CC, async () => {
    const { code, out, err } = await run(cliPath, ['bench', '--transports', 'baseline:c-futex-wake,baseline:c-shm', '--size', '64,4k', '--count', '200', '--trials', '1', '--markdown']);
    assert.equal(code, 0, err);
    const line = /^Cross-core wake-up on this machine: ([\d.]+) µs \(half the median round trip of baseline:c-futex-wake at 64 B\)/m.exec(out);
    assert.ok(line, out);
    const futex = out.split('\n').find((l) => l.startsWith('| baseline:c-futex-wake | 64 B |'));
    assert.ok(futex, out);
    const rtt = Number(futex.split('|')[3]);
    assert.ok(Math.abs(Number(line[1]) - rtt / 2) <= rtt / 100 + 0.01, `${line[1]} µs is half of ${rtt} µs`);
    assert.deepEqual(trialBinaries(process.pid), []);
  });

  test('the wake-up line: from the smallest size of baseline:c-futex-wake, absent when it did not run; two CPUs for it', T, () => {
    const row = (transport: string, size: number, rtt: number): BenchRow => ({ transport, size, rttMedianUs: rtt, rttP99Us: rtt * 2, msgsPerSec: 1000, mbPerSec: 1 });
    assert.equal(wakeUpLine([row('baseline:net-unix', 64, 20)]), undefined);
    assert.match(wakeUpLine([row('baseline:c-futex-wake', 4096, 90), row('baseline:c-futex-wake', 64, 75)])!, /^Cross-core wake-up on this machine: 37\.5 µs .* at 64 B\)/);
    const html = htmlReport({ rows: [row('baseline:c-futex-wake', 64, 75)], machine: 'm', method: 'm', date: new Date(0) });
    assert.match(html, /<p class="wake-up">Cross-core wake-up on this machine: 37\.5 µs/);
    assert.deepEqual(crossCorePair(3, 5), [3, 5], '--pin chooses');
    const [a, b] = crossCorePair(undefined, undefined);
    if (allowedCpus().length > 1) assert.ok(a >= 0 && b >= 0 && a !== b, `${a} and ${b}`);
    else assert.deepEqual([a, b], [-1, -1]);
  });

  test('report text is escaped', T, () => {
    const html = htmlReport({
      rows: [{ transport: 'a<b>&"c"', size: 64, rttMedianUs: 1, rttP99Us: 2, msgsPerSec: 10, mbPerSec: 0.00064 }],
      machine: '<script>alert(1)</script>',
      method: 'm',
      date: new Date(0),
    });
    assertSelfContainedHtml(html);
    assert.ok(html.includes('a&#60;b&#62;&#38;&#34;c&#34;'));
  });
  describe('--compare: other libraries in the same run', () => {
    /** Runs the bench CLI; resolves with its exit status, stdout and stderr. */
    function cli(args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number | null; out: string; err: string; pid: number }> {
      const child = spawn(process.execPath, [cliPath, 'bench', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
      let out = '';
      let err = '';
      child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
      child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
      return new Promise((resolve) => child.on('close', (code) => resolve({ code, out, err, pid: child.pid! })));
    }

    /** An IPCKIT_BENCH_PACKAGES value that makes the loader look `pkg` up under a name no registry has. */
    const absent = (pkg: string) => ({ [PACKAGES_ENV]: `${pkg}=ipckit-bench-absent-${randomBytes(6).toString('hex')}` });

    test('the compare cases are not in the default run, and are known by name', T, () => {
      assert.deepEqual(
        COMPARE_CASES.map((c) => [c.transport, c.optionalPackage]),
        [
          ['compare:zeromq-ipc', 'zeromq'],
          ['compare:node-ipc', 'node-ipc'],
        ],
      );
      for (const c of COMPARE_CASES) assert.ok(!CASES.includes(c));
    });

    test('--compare measures each installed library beside the selected transports, and leaves nothing', T, async (t) => {
      const { code, out, err, pid } = await cli(['--transports', 'baseline:net-unix', '--compare', '--size', '64,4k', '--count', '200', '--trials', '1', '--json']);
      assert.equal(code, 0, err);
      const entries = JSON.parse(out) as Array<BenchRow | { transport: string; skipped: string }>;
      assert.deepEqual(
        entries.slice(0, 2).map((r) => r.transport),
        ['baseline:net-unix', 'baseline:net-unix'],
        'the selected transports first, the compare cases after',
      );
      for (const c of COMPARE_CASES) {
        await t.test(c.transport, (st) => {
          const why = c.unavailable?.();
          if (why) {
            assert.deepEqual(entries.filter((e) => e.transport === c.transport), [{ transport: c.transport, skipped: why }]);
            return st.skip(why);
          }
          const rows = entries.filter((e): e is BenchRow => e.transport === c.transport);
          assert.deepEqual(
            rows.map((r) => r.size),
            [64, 4096],
          );
          for (const row of rows) assertRow(row, c.transport, row.size);
        });
      }
      assert.deepEqual(benchPeers(), []);
      assert.deepEqual(leftovers(pid), []);
    });

    test('--compare with a package absent: one skip line, a skipped entry in --json, the run goes on', T, async () => {
      const { code, out, err, pid } = await cli(
        ['--transports', 'baseline:net-unix', '--compare', '--count', '100', '--trials', '1', '--json'],
        absent('zeromq'),
      );
      assert.equal(code, 0, err);
      const skipLines = err.split('\n').filter((l) => l.includes('compare:zeromq-ipc'));
      assert.deepEqual(skipLines, ['bench: skipping compare:zeromq-ipc: zeromq is not installed']);
      const entries = JSON.parse(out) as Array<BenchRow | { transport: string; skipped: string }>;
      assert.deepEqual(entries.at(-1), { transport: 'compare:zeromq-ipc', skipped: 'zeromq is not installed' });
      assertRow(entries[0] as BenchRow, 'baseline:net-unix', 64);
      assert.ok(!entries.some((e) => e.transport === 'compare:zeromq-ipc' && !('skipped' in e)));
      assert.deepEqual(leftovers(pid), []);
    });

    test('naming an absent compare case in --transports skips it too (the table is just empty of it)', T, async () => {
      const { code, out, err } = await cli(['--transports', 'baseline:net-unix,compare:node-ipc', '--count', '100', '--trials', '1'], absent('node-ipc'));
      assert.equal(code, 0, err);
      assert.match(err, /^bench: skipping compare:node-ipc: node-ipc is not installed$/m);
      assert.match(out, /baseline:net-unix/);
      assert.doesNotMatch(out, /compare:node-ipc/);
    });

    test('a package that fails to load is skipped with its error, and --list says which are installed', T, async () => {
      const dir = mkdtempSync(join(tmpdir(), 'ipckit-bench-broken-'));
      try {
        const broken = join(dir, 'broken.mjs');
        writeFileSync(broken, "throw new TypeError('broken on purpose');\n");
        const env = { [PACKAGES_ENV]: `zeromq=${broken},${absent('node-ipc')[PACKAGES_ENV]}` };
        const list = await cli(['--list'], env);
        assert.equal(list.code, 0, list.err);
        assert.match(list.out, /^compare:zeromq-ipc +\(installed, fails to load: TypeError: broken on purpose\) /m);
        assert.match(list.out, /^compare:node-ipc +\(not installed\) /m);

        const run = await cli(['--transports', 'baseline:net-unix', '--compare', '--count', '100', '--trials', '1', '--json'], env);
        assert.equal(run.code, 0, run.err);
        const skipped = (JSON.parse(run.out) as Array<{ transport: string; skipped?: string }>).filter((e) => e.skipped);
        assert.deepEqual(skipped, [
          { transport: 'compare:zeromq-ipc', skipped: 'zeromq fails to load: TypeError: broken on purpose' },
          { transport: 'compare:node-ipc', skipped: 'node-ipc is not installed' },
        ]);
        assert.equal(run.err.split('\n').filter((l) => l.startsWith('bench: skipping')).length, 2);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    test('--list marks each installed compare package', T, async (t) => {
      const { code, out } = await cli(['--list']);
      assert.equal(code, 0);
      for (const c of COMPARE_CASES) {
        const why = c.unavailable?.();
        if (why) {
          t.diagnostic(`${c.transport}: ${why}`);
          continue;
        }
        assert.match(out, new RegExp(`^${c.transport} +\\(installed\\) `, 'm'));
      }
    });
  });
});
