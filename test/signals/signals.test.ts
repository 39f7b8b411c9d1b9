// Signals between real processes. Everything that changes process-wide signal
// state runs in peer processes (fixtures/signal-peer, the ipckit command), so
// the test runner's own signal handling is never touched.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { IpcError, signals, type SignalInfo } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, compileC, has, startPeer, withoutCapabilities, type Peer } from '../helpers.js';

const T = { timeout: 60_000 };
const cleanups: Array<() => void> = [];
after(() => cleanups.forEach((c) => c()));
function cc(source: string): string {
  const bin = compileC(source);
  cleanups.push(bin.cleanup);
  return bin.path;
}

type Line = Record<string, any>;

/** Next line from the peer that matches; fails on anything else. */
async function expectLine(peer: Peer, what: string, match: (l: Line) => boolean): Promise<Line> {
  const line = await peer.next<Line>();
  assert.ok(match(line), `expected ${what}, got ${JSON.stringify(line)}`);
  return line;
}

async function request(peer: Peer, cmd: Line): Promise<Line> {
  peer.send(cmd);
  const line = await expectLine(peer, `reply to ${cmd.op}`, (l) => l.reply === true);
  if (line.error) assert.fail(`peer ${cmd.op} failed: ${JSON.stringify(line.error)}`);
  return line;
}

/**
 * Has the peer listen for `signal`, then sends it `op` (which raises the
 * signal and replies): the signal's line and the reply, in whichever order
 * they came.
 */
async function signalAndReply(peer: Peer, signal: string, op: string): Promise<{ info: Line; reply: Line }> {
  await request(peer, { op: 'on', signal });
  peer.send({ op });
  const lines = [await peer.next<Line>(), await peer.next<Line>()];
  return { info: lines.find((l) => l.event === 'signal')!, reply: lines.find((l) => l.reply)! };
}

async function signalPeer(): Promise<Peer & { pid: number }> {
  const peer = startPeer('signal-peer');
  const ready = await peer.next<{ pid: number }>();
  return Object.assign(peer, { pid: ready.pid });
}

async function stop(peer: Peer): Promise<void> {
  peer.child.kill('SIGKILL');
  await peer.exited;
}

/** SigBlk of every thread of a process, by thread id. */
function threadMasks(pid: number): Map<string, bigint> {
  const out = new Map<string, bigint>();
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, 'utf8');
      out.set(tid, BigInt(`0x${/SigBlk:\s*([0-9a-f]+)/.exec(status)![1]}`));
    } catch {
      /* thread exited meanwhile */
    }
  }
  return out;
}
const bit = (n: number) => 1n << BigInt(n - 1);

/** sigqueue()s SIGRTMIN+K with values 1..N to a pid, waiting while the receiver's queue is full. */
let rtSenderPath: string | undefined;
const rtSenderSource = `
#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int pid = atoi(argv[1]), sig = SIGRTMIN + atoi(argv[2]), n = atoi(argv[3]);
  for (int i = 1; i <= n; i++) {
    union sigval v = { .sival_int = i };
    while (sigqueue(pid, sig, v) != 0) {
      if (errno != EAGAIN) { perror("sigqueue"); return 1; }
      sched_yield(); /* the receiver's queue is full (RLIMIT_SIGPENDING): let it drain */
    }
  }
  return 0;
}`;
const rtSender = (): string => (rtSenderPath ??= cc(rtSenderSource));

/** `ipckit` as installed: node dist/cli/main.js. */
const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const ipckit = (args: string[], options = {}) => startPeer(process.execPath, [MAIN, ...args], options);
const RT1 = signals.SIGRTMIN + 1;

// ---------------------------------------------------------------------------

describe('signal table', () => {
  test('covers exactly the signals `kill -l` prints, with the same numbers and names', { ...T, skip: !has('bash') && 'bash missing' }, () => {
    const out = spawnSync('bash', ['-c', 'kill -l'], { encoding: 'utf8' }).stdout;
    const fromShell = [...out.matchAll(/(\d+)\) (SIG[A-Z0-9+-]+)/g)].map((m) => [Number(m[1]), m[2]]);
    assert.ok(fromShell.length >= 60, out);
    const ours = signals.list().map((r) => [r.number, r.name]);
    assert.deepEqual(ours, fromShell);
  });

  test('default actions match man 7 signal', { ...T, skip: !existsSync('/usr/share/man/man7/signal.7.gz') && 'man page missing' }, () => {
    const man = gunzipSync(readFileSync('/usr/share/man/man7/signal.7.gz')).toString('utf8');
    const first = man.slice(man.indexOf('.TS'), man.indexOf('.TE'));
    const ACTIONS: Record<string, string> = { Term: 'terminate', Core: 'core', Stop: 'stop', Cont: 'continue', Ign: 'ignore' };
    const fromMan = new Map<string, string>();
    for (const m of first.matchAll(/^(SIG[A-Z0-9]+)\t[^\t]*\t(\w+)\t/gm)) fromMan.set(m[1]!, ACTIONS[m[2]!]!);
    assert.match(man, /default action for an unhandled\s+real-time signal is to terminate/);
    for (const row of signals.list()) {
      const expected = row.number >= signals.SIGRTMIN ? 'terminate' : fromMan.get(row.name);
      assert.equal(row.action, expected, row.name);
      assert.equal(row.catchable, row.name !== 'SIGKILL' && row.name !== 'SIGSTOP', row.name);
      assert.ok(row.description.length > 5, row.name);
    }
    // Well-known defaults: SIGCHLD is ignored, SIGQUIT dumps core, SIGKILL and SIGSTOP cannot be caught.
    const by = Object.fromEntries(signals.list().map((r) => [r.name, r]));
    assert.equal(by.SIGCHLD!.action, 'ignore');
    assert.equal(by.SIGQUIT!.action, 'core');
    assert.equal(by.SIGKILL!.catchable, false);
    assert.equal(by.SIGSTOP!.catchable, false);
  });

  test("the kernel's own default actions agree with the table", T, () => {
    // One child per signal, default disposition, own process group (so stop
    // signals are not discarded as for an orphaned group), no core files.
    // After the signal, SIGRTMAX is sent as a sentinel: pending standard and
    // lower realtime signals are taken first, so a child killed by SIGRTMAX
    // survived the signal under test.
    const probe = cc(`
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
int main(void) {
  for (int s = 1; s <= SIGRTMAX; s++) {
    if (s > 31 && s < SIGRTMIN) continue;
    int p[2]; pipe(p);
    pid_t c = fork();
    if (c == 0) {
      /* No core dumps, not even to a core_pattern pipe (RLIMIT_CORE 1 aborts those). */
      prctl(PR_SET_DUMPABLE, 0); struct rlimit one = {1, 1}; setrlimit(RLIMIT_CORE, &one);
      setpgid(0, 0);
      for (int k = 1; k <= SIGRTMAX; k++) signal(k, SIG_DFL);
      sigset_t all; sigemptyset(&all); sigprocmask(SIG_SETMASK, &all, NULL);
      write(p[1], "r", 1);
      for (;;) pause();
    }
    char b; read(p[0], &b, 1); close(p[0]); close(p[1]);
    kill(c, s);
    if (s != SIGRTMAX) kill(c, SIGRTMAX);
    int st; waitpid(c, &st, WUNTRACED);
    const char *r = WIFSTOPPED(st) ? "stop" : (WIFSIGNALED(st) && WTERMSIG(st) == s) ? "killed" : "survived";
    if (WIFSTOPPED(st)) { kill(c, SIGKILL); waitpid(c, &st, 0); }
    printf("%d %s\\n", s, r);
  }
  return 0;
}`);
    const observed = new Map(
      spawnSync(probe, [], { encoding: 'utf8' })
        .stdout.trim()
        .split('\n')
        .map((l) => l.split(' ') as [string, string])
        .map(([n, r]) => [Number(n), r]),
    );
    const expect = { terminate: 'killed', core: 'killed', stop: 'stop', continue: 'survived', ignore: 'survived' } as const;
    for (const row of signals.list()) assert.equal(observed.get(row.number), expect[row.action], row.name);
    assert.equal(observed.size, signals.list().length);
  });

  test('names, aliases and numbers resolve; unknown ones are RangeErrors', T, () => {
    assert.equal(signals.toNumber('SIGUSR1'), signals.toNumber('usr1'));
    assert.equal(signals.toNumber('SIGIOT'), signals.toNumber('SIGABRT'));
    assert.equal(signals.toNumber('SIGRTMIN+1'), RT1);
    assert.equal(signals.toNumber('SIGRTMAX-0'), signals.SIGRTMAX);
    assert.equal(signals.toNumber(String(RT1)), RT1);
    assert.equal(signals.toName(RT1), 'SIGRTMIN+1');
    for (const bad of ['SIGFOO', 'SIGRTMIN+99', 'SIGRTMIN-1', 32, 0, 200, '']) {
      assert.throws(() => signals.toNumber(bad), { name: 'RangeError', code: 'ERR_IPCKIT_UNKNOWN_SIGNAL' }, String(bad));
    }
    assert.throws(() => signals.toNumber(1.5), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => signals.toNumber({} as unknown as string), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });
});

// ---------------------------------------------------------------------------

describe('sending', () => {
  /** A C receiver that blocks the signals and prints each siginfo from sigwaitinfo. */
  const receiverSource = `
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
int main(int argc, char **argv) {
  int n = atoi(argv[1]);
  sigset_t set; sigemptyset(&set); sigaddset(&set, SIGUSR1); sigaddset(&set, SIGRTMIN + 1);
  sigprocmask(SIG_BLOCK, &set, NULL);
  printf("{\\"ready\\":true}\\n"); fflush(stdout);
  for (int i = 0; i < n; i++) {
    siginfo_t si; int s = sigwaitinfo(&set, &si);
    printf("{\\"number\\":%d,\\"code\\":%d,\\"pid\\":%d,\\"uid\\":%d,\\"value\\":%d}\\n", s, si.si_code, (int)si.si_pid, (int)si.si_uid, si.si_value.sival_int);
    fflush(stdout);
  }
  return 0;
}`;

  test('a C program receives kill, sigqueue and pidfd_send_signal with our pid, uid and value', T, async () => {
    const peer = startPeer(cc(receiverSource), ['4']);
    await peer.next();
    const pid = peer.child.pid!;
    const SI_USER = 0;
    const SI_QUEUE = -1;
    assert.equal(signals.send(pid, 'SIGUSR1'), true);
    assert.deepEqual(await peer.next(), { number: signals.toNumber('SIGUSR1'), code: SI_USER, pid: process.pid, uid: process.getuid!(), value: 0 });
    assert.equal(signals.send(pid, 'SIGRTMIN+1', { value: -12345 }), true);
    assert.deepEqual(await peer.next(), { number: RT1, code: SI_QUEUE, pid: process.pid, uid: process.getuid!(), value: -12345 });
    using fd = signals.pidfd(peer.child);
    assert.equal(signals.send(fd, RT1, { value: 2 ** 31 - 1 }), true);
    assert.deepEqual(await peer.next(), { number: RT1, code: SI_QUEUE, pid: process.pid, uid: process.getuid!(), value: 2 ** 31 - 1 });
    assert.equal(signals.send(fd, 'USR1'), true);
    assert.deepEqual(await peer.next(), { number: signals.toNumber('SIGUSR1'), code: SI_USER, pid: process.pid, uid: process.getuid!(), value: 0 });
    assert.equal((await peer.exited).code, 0);
  });

  test('a process that is gone is false (ESRCH), never an exception; its pidfd never reaches a recycled pid', T, async () => {
    const child = spawn('sh', ['-c', 'read x'], { stdio: ['pipe', 'ignore', 'ignore'] });
    await new Promise((resolve) => child.once('spawn', resolve));
    const fd = signals.pidfd(child);
    assert.equal(fd.pid, child.pid);
    assert.equal(signals.send(child.pid!, 0), true, 'signal 0: the child exists');
    child.stdin!.end('\n');
    await new Promise((resolve) => child.once('exit', resolve));
    // Reaped by Node: the pid is free now, the pidfd still names the dead process.
    assert.equal(signals.send(fd, 'SIGTERM'), false);
    assert.equal(signals.send(fd, 'SIGRTMIN+1', { value: 1 }), false);
    assert.equal(signals.send(child.pid!, 'SIGUSR1'), false);
    assert.equal(signals.send(child.pid!, 'SIGUSR1', { value: 3 }), false);
    assert.throws(() => signals.pidfd(child), (e: unknown) => e instanceof IpcError && e.code === 'ESRCH');
    fd.close();
    fd.close();
    assert.throws(() => signals.send(fd, 'SIGTERM'), { code: 'ERR_IPCKIT_CLOSED' });
  });

  test('permission errors throw IpcError', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    // The target runs as nobody; the sender is root without CAP_KILL, so the
    // kernel's uid check applies to it. (Running the sender itself as nobody
    // would need the checkout readable by nobody, which a private clone is not.)
    const target = spawn('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'sh', '-c', 'echo ready; exec sleep 60'], {
      stdio: ['ignore', 'pipe', 'ignore'],
    });
    await new Promise((resolve) => target.stdout!.once('data', resolve)); // its uid is nobody's by now
    try {
      const [cmd, args] = withoutCapabilities(process.execPath, ['--input-type=module', '-e',
        `import { signals } from ${JSON.stringify(import.meta.resolve('ipckit'))};
         try { signals.send(${target.pid}, 0); console.log('sent'); } catch (e) { console.log(e.name, e.code, e.syscall); }`]);
      const r = spawnSync(cmd, args, { encoding: 'utf8' });
      assert.equal(r.stdout.trim(), 'IpcError EPERM kill', r.stderr);
    } finally {
      target.kill('SIGKILL');
    }
  });

  test('bad arguments are refused before any system call', T, () => {
    assert.throws(() => signals.send(-1, 'SIGTERM'), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => signals.send(-process.pid, 'SIGTERM', { value: 1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => signals.send(process.pid, 'SIGUSR1', { value: 2 ** 31 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => signals.send(process.pid, 'SIGUSR1', { value: 1.5 }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => signals.send('1' as unknown as number, 'SIGUSR1'), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => signals.send(process.pid, 'SIGNOPE'), { code: 'ERR_IPCKIT_UNKNOWN_SIGNAL' });
    assert.throws(() => signals.pidfd(0), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });

  test('a misspelt option is a TypeError naming the nearest one, before any signal is sent or taken', T, async () => {
    // These throw before touching any signal state, so the runner itself is safe.
    const calls: Array<[string, () => unknown, string | null]> = [
      // Signal 0 only checks that the process exists: harmless if it went out.
      ['send', () => signals.send(process.pid, 0, { valeu: 1 } as never), 'value'],
      ['send', () => signals.send(process.pid, 0, { payload: 1 } as never), null],
      ['once', () => signals.once('SIGUSR1', { timout: 5 } as never), 'timeout'],
      ['once', () => signals.once('SIGUSR1', { singal: new AbortController().signal } as never), 'signal'],
      ['watch', () => signals.watch('SIGUSR1', { sigal: new AbortController().signal } as never), 'signal'],
      ['watch', () => signals.watch('SIGUSR1', { timeout: 5 } as never), null],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
  });

  test('SIGKILL and SIGSTOP cannot be taken; fault signals are refused', T, () => {
    // These throw before touching any signal state, so the runner itself is safe.
    for (const s of ['SIGKILL', 'SIGSTOP', 9]) {
      assert.throws(() => signals.on(s, () => {}), { name: 'TypeError', code: 'ERR_IPCKIT_SIGNAL_UNCATCHABLE', message: /cannot be caught/ });
      assert.throws(() => signals.block(s), { code: 'ERR_IPCKIT_SIGNAL_UNCATCHABLE' });
    }
    assert.throws(() => signals.watch(['SIGUSR1', 'SIGSTOP']), { code: 'ERR_IPCKIT_SIGNAL_UNCATCHABLE' });
    assert.throws(() => signals.on('SIGSEGV', () => {}), { code: 'ERR_IPCKIT_SIGNAL_RESERVED' });
    assert.throws(() => signals.on('SIGURG', () => {}), { code: 'ERR_IPCKIT_SIGNAL_RESERVED' }, 'wakes waiter threads');
    assert.throws(() => signals.block('SIGURG'), { code: 'ERR_IPCKIT_SIGNAL_RESERVED' });
    assert.throws(() => signals.on('SIGUSR1', 'nope' as unknown as () => void), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => signals.off('SIGUSR1', undefined as unknown as () => void), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => signals.watch([]), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
  });
});

// ---------------------------------------------------------------------------

describe('receiving', () => {
  test('1000 realtime signals sigqueued by a C program arrive all, in order, with its pid and uid', T, async () => {
    const sender = rtSender();
    const receiver = ipckit(['signal', 'wait', 'SIGRTMIN+1', '--count', '1000', '--json']);
    const ready = await receiver.next<{ ready: boolean; pid: number }>();
    assert.deepEqual(ready, { ready: true, pid: receiver.child.pid });
    // Every thread of the receiver blocks the signal, so only the signalfd can take it.
    const masks = threadMasks(ready.pid);
    assert.ok(masks.size > 3, 'a Node process has several threads');
    for (const [tid, mask] of masks) assert.ok(mask & bit(RT1), `thread ${tid} blocks SIGRTMIN+1`);

    const child = spawn(sender, [String(ready.pid), '1', '1000'], { stdio: 'inherit' });
    const values: number[] = [];
    for (let i = 0; i < 1000; i++) {
      const info = await receiver.next<SignalInfo>();
      assert.equal(info.pid, child.pid);
      assert.equal(info.uid, process.getuid!());
      assert.equal(info.code, 'SI_QUEUE');
      assert.equal(info.signal, 'SIGRTMIN+1');
      values.push(info.value!);
    }
    assert.deepEqual(values, Array.from({ length: 1000 }, (_, i) => i + 1));
    assert.equal((await receiver.exited).code, 0);
  });

  test('a loop of once() calls loses nothing and never lets the default action through', T, async () => {
    const peer = await signalPeer();
    try {
      await request(peer, { op: 'once-loop', signal: 'SIGRTMIN+4', count: 300 });
      const child = spawn(rtSender(), [String(peer.pid), '4', '300'], { stdio: 'inherit' });
      for (let i = 1; i <= 300; i++) {
        const l = await expectLine(peer, 'signal', (x) => x.event === 'signal');
        assert.deepEqual([l.value, l.pid], [i, child.pid]);
      }
      assert.deepEqual(await peer.next(), { reply: true, loopDone: 300 });
    } finally {
      await stop(peer);
    }
  });

  test("`kill -USR1` from a shell arrives with code SI_USER and the shell's pid", T, async () => {
    const receiver = ipckit(['signal', 'wait', 'SIGUSR1', '--json']);
    const { pid } = await receiver.next<{ pid: number }>();
    const shell = spawnSync('sh', ['-c', `echo $$; kill -USR1 ${pid}`], { encoding: 'utf8' });
    const info = await receiver.next<Line>();
    assert.deepEqual(info, { signal: 'SIGUSR1', number: signals.toNumber('SIGUSR1'), pid: Number(shell.stdout.trim()), uid: process.getuid!(), value: null, code: 'SI_USER' });
    assert.equal((await receiver.exited).code, 0);
  });

  test('nothing is lost between registration and delivery, and block() holds signals in order', T, async () => {
    const peer = await signalPeer();
    try {
      // Sent to itself in the same tick as on(): all arrive.
      await request(peer, { op: 'on-and-raise', signal: 'SIGRTMIN+2', count: 5 });
      for (let i = 1; i <= 5; i++) {
        const l = await expectLine(peer, 'signal', (x) => x.event === 'signal');
        assert.equal(l.value, i);
        assert.equal(l.pid, peer.pid);
      }
      await request(peer, { op: 'block', signals: ['SIGRTMIN+2', 'SIGUSR2'] });
      for (let i = 10; i < 15; i++) signals.send(peer.pid, 'SIGRTMIN+2', { value: i });
      signals.send(peer.pid, 'SIGUSR2');
      // SIGUSR2 is not taken: blocked, its default action (terminate) waits.
      const { pending } = await request(peer, { op: 'pending' });
      assert.deepEqual(pending.sort(), ['SIGRTMIN+2', 'SIGUSR2']);
      await request(peer, { op: 'unblock', signals: ['SIGRTMIN+2'] });
      for (let i = 10; i < 15; i++) assert.equal((await expectLine(peer, 'signal', (x) => x.event === 'signal')).value, i);
      // Releasing SIGUSR2 runs its default action now.
      peer.send({ op: 'unblock', signals: ['SIGUSR2'] });
      assert.deepEqual(await peer.exited, { code: null, signal: 'SIGUSR2' });
    } finally {
      await stop(peer);
    }
  });

  test("coexists with Node's process.on() and keeps default actions of signals it does not take", T, async () => {
    const peer = await signalPeer();
    try {
      await request(peer, { op: 'process-on', signal: 'SIGINT' });
      await request(peer, { op: 'on', signal: 'SIGINT' });
      process.kill(peer.pid, 'SIGINT');
      const seen = [await peer.next<Line>(), await peer.next<Line>()].map((l) => l.event).sort();
      assert.deepEqual(seen, ['process', 'signal']);
      await request(peer, { op: 'off', signal: 'SIGINT' });
      process.kill(peer.pid, 'SIGINT');
      assert.deepEqual(await peer.next(), { event: 'process', signal: 'SIGINT' });
      // Taken and given back: SIGUSR2's default action applies again.
      const usr2 = bit(signals.toNumber('SIGUSR2'));
      const before = threadMasks(peer.pid);
      await request(peer, { op: 'on', signal: 'SIGUSR2' });
      for (const [tid, mask] of threadMasks(peer.pid)) assert.ok(mask & usr2, `thread ${tid} blocks SIGUSR2 while taken`);
      await request(peer, { op: 'off', signal: 'SIGUSR2' });
      // Every thread is back as it was (Node's inspector thread blocks everything by itself).
      for (const [tid, mask] of threadMasks(peer.pid)) {
        if (before.has(tid)) assert.equal(mask & usr2, before.get(tid)! & usr2, `thread ${tid}`);
        else assert.equal(mask & usr2, 0n, `new thread ${tid}`);
      }
      // With SIGUSR1 taken, SIGTERM still terminates.
      await request(peer, { op: 'on', signal: 'SIGUSR1' });
      process.kill(peer.pid, 'SIGTERM');
      assert.deepEqual(await peer.exited, { code: null, signal: 'SIGTERM' });
    } finally {
      await stop(peer);
    }
    // And Ctrl+C (SIGINT) still ends a process that took other signals.
    const other = await signalPeer();
    await request(other, { op: 'on', signal: 'SIGUSR1' });
    await request(other, { op: 'on', signal: 'SIGRTMIN+1' });
    process.kill(other.pid, 'SIGINT');
    assert.deepEqual(await other.exited, { code: null, signal: 'SIGINT' });
  });

  test('off() removes a once() listener and gives the signal back', T, async () => {
    const peer = await signalPeer();
    try {
      await request(peer, { op: 'once-then-off', signal: 'SIGUSR2' });
      process.kill(peer.pid, 'SIGUSR2');
      assert.deepEqual(await peer.exited, { code: null, signal: 'SIGUSR2' });
    } finally {
      await stop(peer);
    }
  });

  test('SIGCHLD is received with the child pid and Node still sees its children exit', T, async () => {
    const peer = await signalPeer();
    try {
      const { info, reply } = await signalAndReply(peer, 'SIGCHLD', 'spawn');
      assert.equal(reply.code, 0, "child_process saw the child's exit");
      assert.equal(info.pid, reply.pid);
      assert.equal(info.code, 'CLD_EXITED');
      assert.equal(info.status, 0);
      // Children do not inherit the blocked mask (libuv resets it before exec).
      assert.equal(BigInt(`0x${reply.sigblk}`), 0n);
    } finally {
      await stop(peer);
    }
  });

  test('worker threads keep working, inherit the mask, can send but not take signals', T, async () => {
    const peer = await signalPeer();
    try {
      const { info, reply } = await signalAndReply(peer, 'SIGUSR2', 'worker');
      assert.equal(reply.worker.refused, 'ERR_IPCKIT_NOT_MAIN_THREAD');
      assert.equal(reply.worker.sent, true);
      assert.ok(BigInt(`0x${reply.worker.sigblk}`) & bit(signals.toNumber('SIGUSR2')), 'a new thread starts with the signal blocked');
      assert.equal(reply.exitCode, 0);
      assert.deepEqual({ pid: info.pid, code: info.code, value: info.value }, { pid: peer.pid, code: 'SI_QUEUE', value: 42 });
      // The worker's exit (its own copy of the addon shutting down) left the main thread's delivery alone.
      signals.send(peer.pid, 'SIGUSR2', { value: 43 });
      const later = await expectLine(peer, 'signal', (l) => l.event === 'signal');
      assert.deepEqual([later.value, later.pid], [43, process.pid]);
    } finally {
      await stop(peer);
    }
  });

  test('process.exit() is not held up by listeners or a pending watch, also from inside a listener', T, async () => {
    const a = await signalPeer();
    await request(a, { op: 'on', signal: 'SIGUSR1' });
    await request(a, { op: 'watch-forever', signal: 'SIGRTMIN+3' });
    a.send({ op: 'exit', code: 3 });
    assert.deepEqual(await a.exited, { code: 3, signal: null });

    const b = await signalPeer();
    await request(b, { op: 'exit-in-listener', signal: 'SIGHUP', code: 4 });
    process.kill(b.pid, 'SIGHUP');
    assert.deepEqual(await b.exited, { code: 4, signal: null });
  });

  test('once() resolves with the info, or rejects on timeout', T, async () => {
    const peer = await signalPeer();
    try {
      peer.send({ op: 'once', signal: 'SIGWINCH', timeout: 50 });
      const { error } = await peer.next<Line>();
      assert.deepEqual({ code: error.code, name: error.name }, { code: 'ETIMEDOUT', name: 'IpcError' });
      peer.send({ op: 'once', signal: 'SIGWINCH', timeout: 50_000 });
      // Lines are handled in order: once() has registered before 'pending' is answered.
      const { pending } = await request(peer, { op: 'pending' });
      assert.deepEqual(pending, []);
      signals.send(peer.pid, 'SIGWINCH', { value: 9 });
      const reply = await peer.next<Line>();
      assert.equal(reply.once.signal, 'SIGWINCH');
      assert.equal(reply.once.value, 9);
      assert.equal(reply.once.pid, process.pid);
    } finally {
      await stop(peer);
    }
  });
});

// ---------------------------------------------------------------------------

describe('ipckit signal (CLI)', () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, [MAIN, 'signal', ...args], { encoding: 'utf8' });

  test('list prints the table, --json the same rows as signals.list()', T, () => {
    const json = cli('list', '--json');
    assert.equal(json.status, 0, json.stderr);
    assert.deepEqual(JSON.parse(json.stdout), signals.list());
    const text = cli('list');
    assert.match(text.stdout, /^NUM\s+NAME\s+ACTION\s+CATCHABLE\s+DESCRIPTION$/m);
    assert.match(text.stdout, /^ +9 {2}SIGKILL\s+terminate\s+no\s+Kill signal$/m);
    assert.match(text.stdout, /SIGRTMAX\s+terminate\s+yes/);
  });

  test('send delivers a value; a missing process is exit status 1', T, async () => {
    const receiver = ipckit(['signal', 'wait', 'SIGUSR2', 'SIGRTMIN+1', '--count', '2', '--json']);
    const { pid } = await receiver.next<{ pid: number }>();
    const sent = cli('send', String(pid), 'SIGRTMIN+1', '--value', '-7');
    assert.equal(sent.status, 0, sent.stderr);
    const first = await receiver.next<Line>();
    assert.deepEqual({ ...first, pid: 0 }, { signal: 'SIGRTMIN+1', number: RT1, pid: 0, uid: process.getuid!(), value: -7, code: 'SI_QUEUE' });
    assert.ok(first.pid > 0 && first.pid !== pid);
    assert.equal(cli('send', String(pid), 'usr2').status, 0);
    assert.equal((await receiver.next<Line>()).code, 'SI_USER');
    assert.equal((await receiver.exited).code, 0);
    const gone = cli('send', String(pid), 'SIGUSR2');
    assert.equal(gone.status, 1);
    assert.match(gone.stderr, /no such process/);
    const bad = cli('send', String(pid), 'SIGBOGUS');
    assert.equal(bad.status, 2, 'a usage error');
    assert.match(bad.stderr, /^ipckit: signal "SIGBOGUS" is not a signal on this system/);
  });

  test('wait prints human lines and gives up after --timeout with status 124', T, async () => {
    const timedOut = cli('wait', 'SIGUSR1', '--timeout', '200');
    assert.equal(timedOut.status, 124);
    assert.match(timedOut.stderr, /timed out after 200 ms/);
    const receiver = ipckit(['signal', 'wait', 'SIGUSR1'], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Without --json, readiness is announced on stderr.
    await new Promise<void>((resolve) => receiver.child.stderr!.once('data', () => resolve()));
    process.kill(receiver.child.pid!, 'SIGUSR1');
    const line = await receiver.next<{ text: string }>();
    assert.equal(line.text, `SIGUSR1 (${signals.toNumber('SIGUSR1')}) from pid ${process.pid} uid ${process.getuid!()} code SI_USER`);
    assert.equal((await receiver.exited).code, 0);
  });
});
