// `ipckit tour`: the whole tour in both languages as real processes, single
// steps, usage errors, step failures, and interruptions that must leave
// nothing behind — no kernel object, no file, no child process.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { fifo, shm } from 'ipckit';
import { defineStep, posixName, tourKey, type Output, type Tour, type TourChild } from '../../dist/cli/tour/kit.js';
import { runTour } from '../../dist/cli/tour/run.js';
import { STEPS, findStep } from '../../dist/cli/tour/steps.js';

const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const CJK = /[\u4e00-\u9fff]/;

interface Run {
  pid: number;
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  ms: number;
  /** Milliseconds from the interrupting signal to the exit. */
  afterSignalMs?: number;
}

/**
 * Runs `ipckit tour ...`. With `interrupt`, sends that signal once stdout
 * matches `at` and `ready(pid, stdout)` (called then, to check or await the
 * moment) has returned or resolved.
 */
function tour(args: string[], interrupt?: { at: RegExp; signal: NodeJS.Signals; ready?: (pid: number, stdout: string) => unknown }): Promise<Run> {
  const started = performance.now();
  const child = spawn(process.execPath, [MAIN, 'tour', ...args], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NO_COLOR: '1' } });
  let stdout = '';
  let stderr = '';
  let sent = false;
  let signalledAt: number | undefined;
  child.stdout.setEncoding('utf8').on('data', (s: string) => {
    stdout += s;
    if (interrupt && !sent && interrupt.at.test(stdout)) {
      sent = true;
      void Promise.resolve(interrupt.ready?.(child.pid!, stdout)).then(() => {
        signalledAt = performance.now();
        child.kill(interrupt.signal);
      });
    }
  });
  child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const now = performance.now();
      resolve({ pid: child.pid!, code, signal, stdout, stderr, ms: now - started, afterSignalMs: signalledAt === undefined ? undefined : now - signalledAt });
    });
  });
}

function entries(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

/** Everything a tour with this pid may have made that still exists (the bench harness names its trials after the same pid). */
function leftovers(pid: number): string[] {
  const prefixes = [`ipckit-tour-${pid}-`, `sem.ipckit-tour-${pid}-`, `ipckit-bench-${pid}-`, `sem.ipckit-bench-${pid}-`];
  const found: string[] = [];
  for (const dir of ['/dev/shm', '/dev/mqueue', tmpdir()]) {
    for (const f of entries(dir)) if (prefixes.some((p) => f.startsWith(p))) found.push(`${dir}/${f}`);
  }
  for (const kind of ['msg', 'sem', 'shm']) {
    let table = '';
    try {
      table = readFileSync(`/proc/sysvipc/${kind}`, 'utf8');
    } catch {
      continue;
    }
    for (const line of table.trim().split('\n').slice(1)) {
      if (Number(line.trim().split(/\s+/)[0]) === (tourKey(pid) | 0)) found.push(`System V ${kind}: ${line.trim()}`);
    }
  }
  return found;
}

/** Child pids the narration mentions ("pid 123", "pids 1 and 2", "pid 1 和 2"). */
function mentionedPids(stdout: string): number[] {
  const pids = new Set<number>();
  for (const match of stdout.matchAll(/\bpids? (\d+)(?:(?: and |\s*和\s*)(\d+))?/g)) {
    pids.add(Number(match[1]));
    if (match[2]) pids.add(Number(match[2]));
  }
  return [...pids];
}

/** The state letter of a process (R, S, Z...), or '-' when there is none. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0]!;
  } catch {
    return '-';
  }
}

/** Whether the main thread of `pid` blocks SIGCHLD (SigBlk in /proc/PID/status: bit 17 - 1). */
function blocksSigchld(pid: number): boolean {
  const mask = /^SigBlk:\s*([0-9a-f]+)$/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? '0';
  return (BigInt(`0x${mask}`) & (1n << 16n)) !== 0n;
}

/** No process the tour started is still there: not running, not a zombie (a reused pid is someone else's). */
function assertChildrenGone(run: Run): void {
  for (const pid of mentionedPids(run.stdout)) {
    const state = processState(pid);
    if (state === '-') continue;
    let cmdline = '';
    try {
      cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    assert.ok(!cmdline.includes('tour/child.js') && state !== 'Z', `process ${pid} of the tour is still there (state ${state}): ${cmdline}`);
  }
}

/** Benchmark drivers the tour `pid` started (the harness names itself in their environment). */
function benchDrivers(pid: number): number[] {
  const found: number[] = [];
  for (const entry of entries('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/environ`, 'utf8').split('\0').includes(`IPCKIT_BENCH_PARENT=${pid}`)) found.push(Number(entry));
    } catch {
      /* gone, or not ours to read */
    }
  }
  return found;
}

function assertClean(run: Run): void {
  assert.deepEqual(leftovers(run.pid), [], 'the tour left kernel objects or files behind');
  assertChildrenGone(run);
}

describe('ipckit tour', () => {
  test('the whole tour passes in under a minute, shows every mechanism at work and leaves nothing behind', { timeout: 90_000 }, async () => {
    const run = await tour([]);
    assert.equal(run.code, 0, `exit status ${run.code}\n${run.stdout}\n${run.stderr}`);
    assert.equal(run.stderr, '');
    assert.ok(run.ms < 60_000, `took ${run.ms} ms`);
    STEPS.forEach((step, i) => {
      const heading = `[${i + 1}/${STEPS.length}] ${step.name} — ${step.title('en')}`;
      assert.ok(run.stdout.includes(`\n${heading}\n`), `missing heading: ${heading}`);
    });
    assert.doesNotMatch(run.stdout, CJK, 'English narration with Chinese in it');
    // Lines in brackets name system calls; the steps really ran: what the children sent and the kernel said came back.
    assert.match(run.stdout, /\[pipe2\]/);
    assert.match(run.stdout, /child \d+ read \d+ bytes: «hello, child/);
    assert.match(run.stdout, /the child read: «hello from the parent»/);
    assert.match(run.stdout, /ENXIO/);
    assert.match(run.stdout, /state Z \(zombie\)/);
    assert.match(run.stdout, /SIGRTMIN\+1 × 5, in order, payloads 1, 2, 3, 4, 5/);
    assert.match(run.stdout, /SIGUSR1 × 1 \(5 sent\)/);
    assert.match(run.stdout, /msgtyp -2\)\]\n\s+→ received type 1: «message 2»/);
    assert.match(run.stdout, /priority 9: «message 4»\n\s+→ priority 5: «message 2»\n\s+→ priority 5: «message 5»/);
    assert.match(run.stdout, /processes waiting on it: 1/);
    assert.match(run.stdout, /(updates lost|never ran at the same moment)/);
    assert.equal(run.stdout.match(/exact: nothing lost/g)?.length, 2, 'Atomics and the mutex count exactly');
    assert.match(run.stdout, /SO_PEERCRED\)\]\n\s+→ pid \d+/);
    assert.match(run.stdout, /sum of 1 \+ 2 \+ 3 \+ 4 = 10/);
    assert.match(run.stdout, /Unix stream socket\s+[\d.]+ µs/, 'the round trips measured here');
    assert.ok(mentionedPids(run.stdout).length >= 10, 'the narration names the child processes');
    assertClean(run);
  });

  test('--lang zh narrates in Chinese', { timeout: 30_000 }, async () => {
    for (const step of STEPS) assert.match(step.title('zh'), CJK, `the Chinese heading of ${step.name}`);
    for (const step of ['pipe', 'signals']) {
      const run = await tour([step, '--lang', 'zh']);
      assert.equal(run.code, 0, `exit status ${run.code}\n${run.stdout}\n${run.stderr}`);
      const numbered = run.stdout.split('\n').filter((l) => /^\s+\d+\. /.test(l));
      assert.ok(numbered.length >= 5, run.stdout);
      for (const line of numbered) assert.match(line, CJK, `a line of the ${step} step not in Chinese: ${line}`);
      assertClean(run);
    }
  });

  test('tour <mechanism> runs that step only', { timeout: 30_000 }, async () => {
    const run = await tour(['pipe']);
    assert.equal(run.code, 0, run.stdout + run.stderr);
    assert.match(run.stdout, /\[1\/11\] pipe — /);
    for (const step of STEPS.slice(1)) assert.ok(!run.stdout.includes(`] ${step.name} — `), `${step.name} ran too`);
    assertClean(run);
  });

  test('usage errors exit 2; --list names every step', { timeout: 30_000 }, async () => {
    const unknown = await tour(['nosuch']);
    assert.equal(unknown.code, 2);
    assert.equal(unknown.stdout, '');
    assert.match(unknown.stderr, /^ipckit: unknown mechanism 'nosuch'; choose one of: pipe, socketpair, fifo, signals, sysvmq, mq, sem, shm, unix, channel, choose\n$/);
    const zh = await tour(['nosuch', '--lang', 'zh']);
    assert.equal(zh.code, 2);
    assert.match(zh.stderr, CJK);
    const lang = await tour(['--lang', 'fr']);
    assert.equal(lang.code, 2);
    assert.match(lang.stderr, /--lang/);
    const option = await tour(['--no-such-option']);
    assert.equal(option.code, 2);
    assert.match(option.stderr, /unknown option '--no-such-option'/);
    const two = await tour(['pipe', 'fifo']);
    assert.equal(two.code, 2);
    const list = await tour(['--list']);
    assert.equal(list.code, 0);
    assert.deepEqual(
      list.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]),
      STEPS.map((s) => s.name),
    );
  });

  // Interrupted at a moment when the step holds kernel objects and children:
  // each case checks that the object is there when the signal goes.
  const sysv = (kind: string) => (pid: number) => leftovers(pid).some((l) => l.startsWith(`System V ${kind}`));
  const interruptions: Array<{ step: string; signal: NodeJS.Signals; at: RegExp; holds: (pid: number, stdout: string) => boolean }> = [
    { step: 'shm', signal: 'SIGINT', at: /shm_open creates/, holds: (pid) => existsSync(`/dev/shm/ipckit-tour-${pid}-shm`) },
    { step: 'sysvmq', signal: 'SIGINT', at: /msgget creates/, holds: sysv('msg') },
    { step: 'sem', signal: 'SIGTERM', at: /does P/, holds: sysv('sem') },
    { step: 'mq', signal: 'SIGINT', at: /mq_open creates/, holds: (pid) => existsSync(`/dev/mqueue/ipckit-tour-${pid}-mq`) },
    { step: 'fifo', signal: 'SIGTERM', at: /Rule 1/, holds: (_, stdout) => existsSync(/mkfifo creates (\S+)/.exec(stdout)?.[1] ?? '-') },
    // SIGCHLD is held (blocked in the tour) while a child runs: the interrupted tour still reaps it.
    { step: 'signals', signal: 'SIGINT', at: /starts and exits at once/, holds: (pid, stdout) => blocksSigchld(pid) && processState(Number(/\(pid (\d+)\) starts/.exec(stdout)?.[1])) !== '-' },
  ];
  for (const { step, signal, at, holds } of interruptions) {
    test(`a tour interrupted by ${signal} in the ${step} step removes what it made and reaps its children`, { timeout: 30_000 }, async () => {
      let held = false;
      const run = await tour([step], { at, signal, ready: (pid, stdout) => (held = holds(pid, stdout)) });
      assert.ok(held, `nothing of the ${step} step existed when the signal went:\n${run.stdout}`);
      assert.equal(run.code, signal === 'SIGINT' ? 130 : 143, `exit status ${run.code} / ${run.signal}\n${run.stdout}\n${run.stderr}`);
      assert.match(run.stdout, /Interrupted \(SIG(INT|TERM)\)/);
      // Children not reaped within 5 s would hold the exit up (and be left to init).
      assert.ok(run.afterSignalMs! < 4000, `${run.afterSignalMs} ms from the signal to the exit`);
      assertClean(run);
    });
  }

  test('interrupted during the measurements, the benchmark peers go too', { timeout: 30_000 }, async () => {
    let peers: number[] = [];
    const run = await tour(['choose'], {
      at: /Measuring on this machine/,
      signal: 'SIGINT',
      // The first driver process appearing is the moment: poll /proc for it.
      ready: async (pid) => {
        while ((peers = benchDrivers(pid)).length === 0) await sleep(10);
      },
    });
    assert.equal(run.code, 130, run.stdout + run.stderr);
    assertClean(run);
    for (const peer of peers) assert.equal(processState(peer), '-', `benchmark driver ${peer} is still there`);
    assert.deepEqual(benchDrivers(run.pid), []);
  });
});

describe('tour steps (in this process)', () => {
  /** A child that waits (up to its own time limit) for a reader of a FIFO that never comes. */
  function waitingChild(t: Tour): TourChild {
    const path = join(t.names.workDir, 'nobody-reads');
    fifo.create(path);
    t.defer(() => fifo.remove(path));
    return t.child('fifo', [path, 'x']);
  }

  function capture(): Output & { lines: string[] } {
    const lines: string[] = [];
    const none = (s: string) => s;
    return { lines, width: 100, style: { heading: none, calls: none, result: none, failure: none }, write: (l) => lines.push(l) };
  }

  test('a failing step is named, its objects and children are removed, later steps still run', { timeout: 30_000 }, async () => {
    let made = '';
    let childPid = 0;
    const boom = defineStep('boom', { en: { title: 'fails' }, zh: { title: '失败' } }, async (t) => {
      made = posixName(t.names, 'boom');
      shm.open(made, { create: true, size: 4096 }).close();
      t.defer(() => shm.unlink(made));
      childPid = waitingChild(t).pid;
      throw new Error('deliberate failure');
    });
    const out = capture();
    const status = await runTour([boom, findStep('socketpair')!], 'en', out);
    const text = out.lines.join('\n');
    assert.equal(status, 1);
    assert.match(text, /✗ this step failed: deliberate failure/);
    assert.match(text, /1 of 2 steps failed: boom\./);
    assert.match(text, /socketpair — /, 'the next step ran');
    assert.match(text, /exit status 0/, 'and passed');
    assert.ok(made && !existsSync(`/dev/shm${made}`), 'the failed step left its object');
    assert.equal(processState(childPid), '-', 'the failed step left its child');
  });

  test('a step that hangs fails when its time is up, and its child is killed', { timeout: 30_000 }, async () => {
    let childPid = 0;
    const hang = defineStep(
      'hang',
      { en: { title: 'hangs' }, zh: { title: '卡住' } },
      async (t) => {
        childPid = waitingChild(t).pid;
        await new Promise(() => {});
      },
      300,
    );
    const out = capture();
    const status = await runTour([hang], 'zh', out);
    assert.equal(status, 1);
    assert.match(out.lines.join('\n'), /没有在 0.3 秒内完成/);
    assert.equal(processState(childPid), '-', 'the child of the step that hung is still there');
  });
});
