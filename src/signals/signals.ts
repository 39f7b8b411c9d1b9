// Signals with payloads and sender information: send with kill / sigqueue /
// pidfd_send_signal, receive standard and realtime signals in kernel order with
// the full siginfo (pid, uid, si_code, value), the signal table of this system.
//
// How delivery works (details and the reasons in native/signals.c): a signal
// someone takes with on/once/watch is blocked in every thread of the process,
// so the kernel keeps it queued (realtime signals in FIFO order), and a
// signalfd watched on the main thread's event loop reads it with its siginfo.
// Nothing runs on another thread and nothing is lost between registration and
// delivery: the signal is blocked before the first listener is added.
//
// Process-wide signal state belongs to the main thread: receiving, block and
// unblock throw ERR_IPCKIT_NOT_MAIN_THREAD in workers (Node does not deliver
// signals to workers either). send, pidfd and list work everywhere.
import type { ChildProcess } from 'node:child_process';
import { isMainThread } from 'node:worker_threads';
import { IpcError, abortError, fromHere, rangeError, stateError, sys, throwIfAborted, timeoutError, typeError, errno } from '../core/errors.js';
import { native, type RawSignalInfo } from '../core/native.js';
import { READABLE, watchFd, type FdWatcher } from '../core/poller.js';
import { checkInteger, checkOptions, show } from '../core/validate.js';

/** A signal by name ('SIGUSR1', 'USR1', 'SIGRTMIN+3', 'SIGRTMAX-1') or number. */
export type SignalSpec = string | number;

/** Default action of a signal, as `man 7 signal` names them (Term, Core, Stop, Cont, Ign). */
export type SignalAction = 'terminate' | 'core' | 'stop' | 'continue' | 'ignore';

export interface SignalRow {
  number: number;
  /** The name `kill -l` prints: 'SIGUSR1', 'SIGRTMIN+1', 'SIGRTMAX-14', ... */
  name: string;
  description: string;
  /** What happens when the signal arrives and nobody handles it. */
  action: SignalAction;
  /** False only for SIGKILL and SIGSTOP, which cannot be caught, blocked or ignored. */
  catchable: boolean;
}

/** One received signal, from the kernel's siginfo. */
export interface SignalInfo {
  /** Name as in list(): 'SIGUSR1', 'SIGRTMIN+1', ... */
  signal: string;
  number: number;
  /** Sending process (for SIGCHLD: the child). 0 when the kernel sent it. */
  pid: number;
  /** Real user id of the sender. */
  uid: number;
  /** The integer payload (sival_int) for SI_QUEUE, SI_TIMER and SI_MESGQ. */
  value?: number;
  /** si_code by name: 'SI_USER' (kill), 'SI_QUEUE' (sigqueue), 'SI_TKILL', 'SI_KERNEL', 'CLD_EXITED', ... */
  code: string;
  /** SIGCHLD only: exit status, or the number of the signal that ended/stopped the child. */
  status?: number;
}

export type SignalListener = (info: SignalInfo) => void;

const C = native.signalConstants;
export const SIGRTMIN: number = C.SIGRTMIN;
export const SIGRTMAX: number = C.SIGRTMAX;
const N = C.names;

// Default actions and descriptions from man 7 signal (Linux), by name; the
// numbers come from this system's <signal.h>.
const STANDARD: ReadonlyArray<readonly [string, SignalAction, string]> = [
  ['SIGHUP', 'terminate', 'Hangup detected on controlling terminal or death of controlling process'],
  ['SIGINT', 'terminate', 'Interrupt from keyboard'],
  ['SIGQUIT', 'core', 'Quit from keyboard'],
  ['SIGILL', 'core', 'Illegal Instruction'],
  ['SIGTRAP', 'core', 'Trace/breakpoint trap'],
  ['SIGABRT', 'core', 'Abort signal from abort(3)'],
  ['SIGBUS', 'core', 'Bus error (bad memory access)'],
  ['SIGFPE', 'core', 'Floating-point exception'],
  ['SIGKILL', 'terminate', 'Kill signal'],
  ['SIGUSR1', 'terminate', 'User-defined signal 1'],
  ['SIGSEGV', 'core', 'Invalid memory reference'],
  ['SIGUSR2', 'terminate', 'User-defined signal 2'],
  ['SIGPIPE', 'terminate', 'Broken pipe: write to pipe with no readers; see pipe(7)'],
  ['SIGALRM', 'terminate', 'Timer signal from alarm(2)'],
  ['SIGTERM', 'terminate', 'Termination signal'],
  ['SIGSTKFLT', 'terminate', 'Stack fault on coprocessor (unused)'],
  ['SIGCHLD', 'ignore', 'Child stopped or terminated'],
  ['SIGCONT', 'continue', 'Continue if stopped'],
  ['SIGSTOP', 'stop', 'Stop process'],
  ['SIGTSTP', 'stop', 'Stop typed at terminal'],
  ['SIGTTIN', 'stop', 'Terminal input for background process'],
  ['SIGTTOU', 'stop', 'Terminal output for background process'],
  ['SIGURG', 'ignore', 'Urgent condition on socket (4.2BSD)'],
  ['SIGXCPU', 'core', 'CPU time limit exceeded (4.2BSD); see setrlimit(2)'],
  ['SIGXFSZ', 'core', 'File size limit exceeded (4.2BSD); see setrlimit(2)'],
  ['SIGVTALRM', 'terminate', 'Virtual alarm clock (4.2BSD)'],
  ['SIGPROF', 'terminate', 'Profiling timer expired'],
  ['SIGWINCH', 'ignore', 'Window resize signal (4.3BSD, Sun)'],
  ['SIGIO', 'terminate', 'I/O now possible (4.2BSD)'],
  ['SIGPWR', 'terminate', 'Power failure (System V)'],
  ['SIGSYS', 'core', 'Bad system call (SVr4); see also seccomp(2)'],
  ['SIGEMT', 'terminate', 'Emulator trap'],
];

/** Other names for the same numbers; accepted by every call, never printed. */
const ALIASES: Record<string, string> = { SIGIOT: 'SIGABRT', SIGPOLL: 'SIGIO', SIGCLD: 'SIGCHLD', SIGUNUSED: 'SIGSYS' };

const byNumber = new Map<number, SignalRow>();
for (const [name, action, description] of STANDARD) {
  const number = N[name];
  if (number === undefined) continue;
  byNumber.set(number, { number, name, description, action, catchable: name !== 'SIGKILL' && name !== 'SIGSTOP' });
}
for (let n = SIGRTMIN; n <= SIGRTMAX; n++) {
  byNumber.set(n, {
    number: n,
    name: realtimeName(n),
    description: `Real-time signal ${n - SIGRTMIN} (queued; meaning defined by the application)`,
    action: 'terminate',
    catchable: true,
  });
}
const TABLE: readonly SignalRow[] = Object.freeze([...byNumber.values()].sort((a, b) => a.number - b.number).map((r) => Object.freeze(r)));
const byName = new Map<string, number>(TABLE.map((r) => [r.name, r.number]));

/** `kill -l` spelling: SIGRTMIN+k in the lower half, SIGRTMAX-k in the upper half. */
function realtimeName(n: number): string {
  if (n === SIGRTMIN) return 'SIGRTMIN';
  if (n === SIGRTMAX) return 'SIGRTMAX';
  return n - SIGRTMIN <= (SIGRTMAX - SIGRTMIN) / 2 ? `SIGRTMIN+${n - SIGRTMIN}` : `SIGRTMAX-${SIGRTMAX - n}`;
}

/** Every signal of this system, by number: 1–31 and SIGRTMIN..SIGRTMAX as glibc computes them at run time. */
export function list(): SignalRow[] {
  return [...TABLE];
}

/** The number of a signal given by name or number (validated against this system's table). */
export function toNumber(signal: SignalSpec, what = 'signal'): number {
  if (typeof signal === 'number') {
    if (!Number.isInteger(signal)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be an integer or a name, got ${signal}`);
    if (!byNumber.has(signal)) throw unknown(signal, what);
    return signal;
  }
  if (typeof signal !== 'string') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a signal name or number, got ${show(signal)}`);
  }
  const text = signal.trim().toUpperCase();
  if (/^\d+$/.test(text)) return toNumber(Number(text), what);
  const name = text.startsWith('SIG') ? text : `SIG${text}`;
  const direct = byName.get(ALIASES[name] ?? name);
  if (direct !== undefined) return direct;
  const rt = /^SIGRT(MIN|MAX)([+-])(\d+)$/.exec(name);
  if (rt && (rt[1] === 'MIN') === (rt[2] === '+')) {
    const n = rt[1] === 'MIN' ? SIGRTMIN + Number(rt[3]) : SIGRTMAX - Number(rt[3]);
    if (n >= SIGRTMIN && n <= SIGRTMAX) return n;
  }
  throw unknown(signal, what);
}

function unknown(signal: SignalSpec, what: string): Error {
  return rangeError(
    'ERR_IPCKIT_UNKNOWN_SIGNAL',
    `${what} ${show(signal)} is not a signal on this system (signals are 1-31 and ` +
      `SIGRTMIN..SIGRTMAX = ${SIGRTMIN}..${SIGRTMAX}; see signals.list())`,
  );
}

/** The name list() uses for a signal number ('SIGRTMIN+1' for 35 here). */
export function toName(signal: SignalSpec): string {
  return byNumber.get(toNumber(signal))!.name;
}

// ---- sending -------------------------------------------------------------------

/** A process descriptor (pidfd_open): signals sent through it can never reach a recycled pid. */
export class PidFd implements Disposable {
  readonly pid: number;
  #fd: number;

  /** @internal */
  constructor(token: symbol, pid: number, fd: number) {
    if (token !== PIDFD_TOKEN) throw new TypeError('use signals.pidfd()');
    this.pid = pid;
    this.#fd = fd;
  }

  /** The descriptor (pollable: readable once the process has exited). */
  get fd(): number {
    if (this.#fd < 0) throw stateError('ERR_IPCKIT_CLOSED', `the pidfd of process ${this.pid} is closed`);
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  close(): void {
    if (this.#fd < 0) return;
    const fd = this.#fd;
    this.#fd = -1;
    native.fdClose(fd);
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
const PIDFD_TOKEN = Symbol('PidFd');

/**
 * A pidfd for a process (pidfd_open). For a ChildProcess of this process it is
 * race-free: Node reaps children on this thread, so a child that has not been
 * reported as exited still owns its pid.
 */
export function pidfd(target: number | ChildProcess): PidFd {
  let pid: number;
  if (typeof target === 'number') {
    pid = checkInteger(target, 'pid', 1, 0x7fffffff);
  } else if (typeof target === 'object' && target !== null && 'pid' in target) {
    if (target.pid === undefined) throw stateError('ERR_IPCKIT_CLOSED', 'the child process was never started (no pid)');
    pid = target.pid;
    if (target.exitCode !== null || target.signalCode !== null) {
      // Already reaped: the pid may belong to someone else by now.
      throw new IpcError(errno.ESRCH, 'pidfd_open', {}, `child ${pid} has already exited and been reaped`);
    }
  } else {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `pidfd() needs a pid or a ChildProcess, got ${show(target)}`);
  }
  const fd = sys(() => native.pidfdOpen(pid));
  return new PidFd(PIDFD_TOKEN, pid, fd);
}

export interface SendOptions {
  /** An integer payload (sigval.sival_int, -2^31..2^31-1): sent with sigqueue, received as info.value. */
  value?: number;
}

/**
 * Sends a signal. Without a value: kill(2) (code SI_USER at the receiver);
 * with a value: sigqueue(3) (code SI_QUEUE). Through a PidFd:
 * pidfd_send_signal(2). Signal 0 only checks that the process exists.
 * Returns false if the process does not exist (ESRCH); other failures
 * (EPERM, ...) throw IpcError.
 * A negative pid addresses a process group (no value allowed); -1 is refused.
 */
export function send(target: number | PidFd, signal: SignalSpec, options?: SendOptions): boolean {
  const n = signal === 0 || signal === '0' ? 0 : toNumber(signal);
  const o = checkOptions(options, 'options', ['value']) as SendOptions;
  const hasValue = o.value !== undefined;
  const value = hasValue ? checkInteger(o.value, 'options.value', -0x80000000, 0x7fffffff) : 0;
  if (target instanceof PidFd) {
    const fd = target.fd;
    return sys(() => native.pidfdSend(fd, n, hasValue, value), { path: `pidfd of ${target.pid}` });
  }
  const pid = checkInteger(target, 'pid', -0x7fffffff, 0x7fffffff);
  if (pid === -1) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', 'pid -1 would signal every process you may signal; ipckit refuses it');
  }
  if (hasValue && pid <= 0) {
    throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `sigqueue needs a single process (pid > 0), got ${pid}`);
  }
  return sys(() => native.signalSend(pid, n, hasValue, value));
}

// ---- receiving ---------------------------------------------------------------

const SIGKILL = N.SIGKILL;
const SIGSTOP = N.SIGSTOP;
const SIGCHLD = N.SIGCHLD;
/*
 * Signals the CPU raises for a fault in a thread. Blocking them makes the
 * kernel kill the process on the next real fault, and V8 relies on SIGSEGV
 * (and SIGBUS/SIGILL/SIGFPE on some platforms) for WebAssembly bounds checks.
 */
/** The signal native/core_waiter.c uses to interrupt a waiter thread (IPCK_WAKE_SIGNAL). */
const WAKE_SIGNAL = N.SIGURG;
const FAULTS = new Set(['SIGSEGV', 'SIGBUS', 'SIGILL', 'SIGFPE'].map((s) => N[s]));

function receivable(signal: SignalSpec, what = 'signal'): number {
  const n = toNumber(signal, what);
  if (n === SIGKILL || n === SIGSTOP) {
    throw typeError(
      'ERR_IPCKIT_SIGNAL_UNCATCHABLE',
      `${toName(n)} cannot be caught, blocked or ignored: the kernel always applies its default action`,
    );
  }
  if (FAULTS.has(n)) {
    throw typeError(
      'ERR_IPCKIT_SIGNAL_RESERVED',
      `${toName(n)} reports a memory or CPU fault in a thread and is used by V8 (WebAssembly); ipckit does not take it`,
    );
  }
  if (n === WAKE_SIGNAL) {
    // Blocking it in every thread would leave waiter threads (native/core_waiter.c)
    // deaf to cancellation: aborted waits would hang, and so would exit.
    throw typeError(
      'ERR_IPCKIT_SIGNAL_RESERVED',
      `${toName(n)} wakes ipckit's waiter threads (cancelling semaphore, futex and message-queue waits); ipckit does not take it`,
    );
  }
  return n;
}

function mainThreadOnly(what: string): void {
  if (!isMainThread) {
    throw stateError(
      'ERR_IPCKIT_NOT_MAIN_THREAD',
      `signals.${what}() changes process-wide signal state and works on the main thread only; ` +
        'workers can send signals and pass what they need to the main thread',
    );
  }
}

const SIGNAL_CODES: Record<number, string> = {};
const CHILD_CODES: Record<number, string> = {};
const POLL_CODES: Record<number, string> = {};
for (const [k, v] of Object.entries(C.codes)) {
  if (k.startsWith('SI_')) SIGNAL_CODES[v] = k;
  else if (k.startsWith('CLD_')) CHILD_CODES[v] = k;
  else if (k.startsWith('POLL_')) POLL_CODES[v] = k;
}
const CARRIES_VALUE = new Set(['SI_QUEUE', 'SI_TIMER', 'SI_MESGQ']);

function codeName(signal: number, code: number): string {
  // Codes > 0 (except SI_KERNEL) mean something specific to the signal.
  const generic = SIGNAL_CODES[code];
  if (code <= 0 || generic === 'SI_KERNEL') return generic ?? String(code);
  if (signal === SIGCHLD) return CHILD_CODES[code] ?? String(code);
  if (signal === N.SIGIO) return POLL_CODES[code] ?? String(code);
  return String(code);
}

function toInfo(raw: RawSignalInfo): SignalInfo {
  const code = codeName(raw.number, raw.code);
  const info: SignalInfo = { signal: byNumber.get(raw.number)?.name ?? String(raw.number), number: raw.number, pid: raw.pid, uid: raw.uid, code };
  if (CARRIES_VALUE.has(code)) info.value = raw.value;
  if (raw.number === SIGCHLD) info.status = raw.status;
  return Object.freeze(info);
}

/** Consumers per signal, in registration order. A signal is taken while it has one. */
const consumers = new Map<number, SignalListener[]>();
/** Signals held with block(): blocked in every thread, not read from the signalfd. */
const held = new Set<number>();
/** Signals this module has blocked in every thread (taken, held, or being released). */
const blockedByUs = new Set<number>();
/** Signals whose last consumer went; given back on the next loop turn unless taken again. */
const releasing = new Set<number>();
let releaseScheduled = false;
let fd = -1;
let watcher: FdWatcher | null = null;
/** Pending once() promises and watch() reads: they keep the process alive. */
let keepAlive = 0;
/** once() consumers: while there are any, one signal is read per loop turn (see onReadable). */
let oneShots = 0;

/**
 * Whether on/once/watch or block() holds `signal` (a name such as 'SIGINT'):
 * the program handles it then, and it never takes its default action.
 */
export function isTaken(signal: string): boolean {
  const n = byName.get(signal);
  return n !== undefined && (consumers.has(n) || held.has(n));
}

function maskThreads(block: number[], unblock: number[]): void {
  const report = sys(() => native.signalMaskThreads(block, unblock, [...blockedByUs, ...held]));
  if (!report.complete) {
    process.emitWarning(
      `ipckit: some threads did not confirm the new signal mask within 2 s (helper ${toName(report.helper)}); ` +
        'signals may reach them and be handled by their default action',
      { code: 'IPCKIT_SIGNAL_MASK' },
    );
  }
}

function blockEverywhere(numbers: number[]): void {
  const needed = numbers.filter((n) => !blockedByUs.has(n));
  if (needed.length === 0) return;
  maskThreads(needed, []);
  for (const n of needed) blockedByUs.add(n);
}

/**
 * Gives signals back to their previous behaviour (default action or Node's
 * handler). With `discard`, instances that arrived while ipckit owned them are
 * dropped first (as Node drops a signal whose last listener went) instead of
 * running their default action now.
 */
function unblockEverywhere(numbers: number[], discard: boolean): void {
  const ours = numbers.filter((n) => blockedByUs.has(n));
  if (ours.length === 0) return;
  if (discard) for (const n of ours) native.signalDiscard(n);
  for (const n of ours) blockedByUs.delete(n);
  maskThreads([], ours);
}

/** Which signals the signalfd reads: taken and not held. Others stay queued in the kernel. */
function updateReadMask(): void {
  if (fd < 0) return;
  const read = [...consumers.keys()].filter((n) => !held.has(n));
  sys(() => native.signalfdSetMask(fd, read));
}

function ensureReader(): void {
  if (fd >= 0) return;
  fd = sys(() => native.signalfdCreate([]));
  watcher = watchFd(fd, READABLE, onReadable, { ref: keepAlive > 0 });
}

function closeReader(): void {
  watcher?.stop();
  watcher = null;
  if (fd >= 0) native.fdClose(fd);
  fd = -1;
}

function holdLoop(delta: number): void {
  keepAlive += delta;
  if (keepAlive > 0) watcher?.ref();
  else watcher?.unref();
}

/**
 * Signals that someone else also handles: Node's own process.on() listeners
 * (through libuv's handler) and libuv's SIGCHLD handler, which reaps children
 * for child_process. They get the signal too, as if ipckit were not there.
 */
function chained(): number[] {
  const out: number[] = [];
  for (const n of consumers.keys()) {
    if (n === SIGCHLD || process.listenerCount(byNumber.get(n)!.name) > 0) out.push(n);
  }
  return out;
}

const BATCH = 64;

function onReadable(): void {
  // A once() consumer re-registers (`while (true) await signals.once(...)`)
  // only after this callback returns and promise reactions run, so while one
  // exists read a single signal per loop turn: the rest stay queued in the
  // kernel for whoever registers next. Otherwise read in bounded batches, so a
  // flood cannot starve the loop; the level-triggered watch calls again.
  const max = oneShots > 0 ? 1 : BATCH;
  const rounds = oneShots > 0 ? 1 : 16;
  for (let round = 0; round < rounds && fd >= 0; round++) {
    const batch = native.signalfdRead(fd, max, chained());
    for (const raw of batch) dispatch(toInfo(raw));
    if (batch.length < max) break;
  }
}

function dispatch(info: SignalInfo): void {
  const list = consumers.get(info.number);
  if (!list) return;
  for (const listener of [...list]) {
    try {
      listener(info);
    } catch (e) {
      // Like an EventEmitter listener throwing, but without losing the rest of the batch.
      queueMicrotask(() => {
        throw e;
      });
    }
  }
}

function subscribe(n: number, listener: SignalListener): () => void {
  let list = consumers.get(n);
  if (!list) {
    // Block first: from this point the kernel queues the signal for us, so
    // nothing sent after this line can be lost or take its default action.
    blockEverywhere([n]);
    consumers.set(n, (list = []));
    releasing.delete(n);
    try {
      ensureReader();
      updateReadMask();
    } catch (e) {
      consumers.delete(n);
      scheduleRelease(n);
      throw e;
    }
  }
  list.push(listener);
  let subscribed = true;
  return () => {
    if (!subscribed) return;
    subscribed = false;
    unsubscribe(n, listener);
  };
}

function unsubscribe(n: number, listener: SignalListener): void {
  const list = consumers.get(n);
  if (!list) return;
  const i = list.indexOf(listener);
  if (i >= 0) list.splice(i, 1);
  if (list.length > 0) return;
  consumers.delete(n);
  updateReadMask(); // still blocked: new instances wait in the kernel
  scheduleRelease(n);
}

/*
 * The release is deferred to the next loop turn: a listener that removes
 * itself and registers again (once() in a loop) must not open a window in
 * which the signal's default action could kill the process, and signals that
 * arrive in between stay queued for the new registration.
 */
function scheduleRelease(n: number): void {
  releasing.add(n);
  if (releaseScheduled) return;
  releaseScheduled = true;
  setImmediate(flushReleases).unref();
}

function flushReleases(): void {
  releaseScheduled = false;
  const gone = [...releasing].filter((n) => !consumers.has(n) && !held.has(n));
  releasing.clear();
  unblockEverywhere(gone, true);
  if (consumers.size === 0) closeReader();
}

/**
 * Calls `listener(info)` on the main thread's event loop for every `signal`
 * received, in the order the kernel queued them. Returns a function that
 * removes the listener. Like process.on('SIGINT'), a listener alone does not
 * keep the process alive. Node's own process.on() listeners for the same
 * signal still run.
 */
export function on(signal: SignalSpec, listener: SignalListener): () => void {
  mainThreadOnly('on');
  const n = receivable(signal);
  checkListener(listener);
  return subscribe(n, listener);
}

/** Removes a listener added with on() (the function on() returned does the same). */
export function off(signal: SignalSpec, listener: SignalListener): void {
  mainThreadOnly('off');
  const n = toNumber(signal);
  checkListener(listener);
  const list = consumers.get(n) ?? [];
  if (list.includes(listener)) {
    unsubscribe(n, listener);
    return;
  }
  // A listener given to once() is registered inside a wrapper.
  (list.find((l) => (l as OnceWrapper).original === listener) as OnceWrapper | undefined)?.remove();
}

function checkListener(listener: unknown): void {
  if (typeof listener !== 'function') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `listener must be a function, got ${show(listener)}`);
}

type OnceWrapper = SignalListener & { original: SignalListener; remove: () => void };

export interface OnceOptions {
  /** Give up after this many milliseconds: the promise rejects with IpcError ETIMEDOUT. */
  timeout?: number;
  /** Abort the wait: the promise rejects with an AbortError (`cause`: `signal.reason`). */
  signal?: AbortSignal;
}

/**
 * The next `signal`. With a listener: calls it once and returns a remover.
 * Without: a Promise of the info, which keeps the process alive while pending.
 */
export function once(signal: SignalSpec, listener: SignalListener): () => void;
export function once(signal: SignalSpec, options?: OnceOptions): Promise<SignalInfo>;
export function once(signal: SignalSpec, arg?: SignalListener | OnceOptions): (() => void) | Promise<SignalInfo> {
  mainThreadOnly('once');
  const n = receivable(signal);
  if (typeof arg === 'function') {
    const wrapper: OnceWrapper = Object.assign(
      (info: SignalInfo) => {
        remove();
        arg(info);
      },
      { original: arg, remove: () => remove() },
    );
    const off = subscribe(n, wrapper);
    oneShots++;
    let live = true;
    const remove = () => {
      if (!live) return;
      live = false;
      oneShots--;
      off();
    };
    return remove;
  }
  const o = checkOptions(arg, 'options', ['timeout', 'signal']) as OnceOptions;
  const timeout = checkInteger(o.timeout, 'options.timeout', 0, 2 ** 31 - 1, undefined);
  const abort = checkAbortSignal(o.signal);
  if (abort?.aborted) return Promise.reject(abortError(abort));
  // The timeout and abort errors are made in callbacks: fromHere() gives them the caller's stack.
  return fromHere(new Promise<SignalInfo>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const finish = () => {
      remove();
      oneShots--;
      holdLoop(-1);
      if (timer) clearTimeout(timer);
      abort?.removeEventListener('abort', onAbort);
    };
    const onAbort = () => {
      finish();
      reject(abortError(abort!));
    };
    const remove = subscribe(n, (info) => {
      finish();
      resolve(info);
    });
    oneShots++;
    holdLoop(1);
    abort?.addEventListener('abort', onAbort, { once: true });
    if (timeout !== undefined) {
      timer = setTimeout(() => {
        finish();
        reject(timeoutError('signalfd', {}, `no ${toName(n)} within ${timeout} ms`));
      }, timeout);
    }
  }));
}

function checkAbortSignal(value: unknown): AbortSignal | undefined {
  if (value === undefined) return undefined;
  if (!(value instanceof AbortSignal)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `options.signal must be an AbortSignal, got ${show(value)}`);
  }
  return value;
}

export interface WatchOptions {
  /** Ends the iteration: the pending or next next() rejects with an AbortError (`cause`: `signal.reason`). */
  signal?: AbortSignal;
}

/** An async iterator over received signals; see watch(). */
export interface SignalWatch extends AsyncIterableIterator<SignalInfo>, Disposable, AsyncDisposable {
  /** Stops receiving; signals already queued for this iterator are dropped. */
  close(): void;
}

class Watch implements SignalWatch {
  #queue: SignalInfo[] = [];
  #waiters: Array<{ resolve: (r: IteratorResult<SignalInfo>) => void; reject: (e: unknown) => void }> = [];
  #removers: Array<() => void>;
  #closed = false;
  #error: unknown = undefined;
  #abort: AbortSignal | undefined;
  #onAbort = () => this.#fail(abortError(this.#abort!));

  constructor(numbers: number[], abort: AbortSignal | undefined) {
    this.#removers = [];
    try {
      for (const n of numbers) this.#removers.push(subscribe(n, (info) => this.#push(info)));
    } catch (e) {
      this.close();
      throw e;
    }
    this.#abort = abort;
    abort?.addEventListener('abort', this.#onAbort, { once: true });
  }

  #push(info: SignalInfo): void {
    const w = this.#waiters.shift();
    if (w) {
      holdLoop(-1);
      w.resolve({ value: info, done: false });
    } else this.#queue.push(info);
  }

  #fail(reason: unknown): void {
    if (this.#closed) return;
    const waiters = this.#waiters.splice(0);
    this.close();
    if (waiters.length) {
      holdLoop(-waiters.length);
      for (const w of waiters) w.reject(reason);
    } else {
      this.#error = reason;
    }
  }

  next(): Promise<IteratorResult<SignalInfo>> {
    if (this.#queue.length) return Promise.resolve({ value: this.#queue.shift()!, done: false });
    if (this.#error !== undefined) {
      const e = this.#error;
      this.#error = undefined;
      return fromHere(Promise.reject(e));
    }
    if (this.#closed) return Promise.resolve({ value: undefined, done: true });
    holdLoop(1);
    return fromHere(new Promise((resolve, reject) => this.#waiters.push({ resolve, reject })));
  }

  return(): Promise<IteratorResult<SignalInfo>> {
    this.close();
    return Promise.resolve({ value: undefined, done: true });
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abort?.removeEventListener('abort', this.#onAbort);
    for (const remove of this.#removers.splice(0)) remove();
    this.#queue.length = 0;
    const waiters = this.#waiters.splice(0);
    if (waiters.length) holdLoop(-waiters.length);
    for (const w of waiters) w.resolve({ value: undefined, done: true });
  }

  [Symbol.asyncIterator](): this {
    return this;
  }

  [Symbol.dispose](): void {
    this.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    this.close();
  }
}

/**
 * Receives `signals` as an async iterator, starting now (signals arriving
 * before the first next() are queued, not lost). A pending next() keeps the
 * process alive. End it with break / return() / close() / the AbortSignal.
 */
export function watch(signals: SignalSpec | SignalSpec[], options?: WatchOptions): SignalWatch {
  mainThreadOnly('watch');
  const specs = Array.isArray(signals) ? signals : [signals];
  if (specs.length === 0) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'watch() needs at least one signal');
  const numbers = [...new Set(specs.map((s, i) => receivable(s, `signals[${i}]`)))];
  const o = checkOptions(options, 'options', ['signal']) as WatchOptions;
  const abort = checkAbortSignal(o.signal);
  throwIfAborted(abort);
  return new Watch(numbers, abort);
}

// ---- blocking ------------------------------------------------------------------

/**
 * Holds signals back: the kernel keeps them pending (realtime ones queued in
 * order, standard ones merged into one) until unblock(). For signals taken
 * with on/once/watch, delivery to listeners pauses. For others, their default
 * action or Node's handler is deferred: block('SIGINT') makes Ctrl+C wait.
 * Blocks in every thread of the process; see docs/signals.md.
 */
export function block(...signals: SignalSpec[]): void {
  mainThreadOnly('block');
  const fresh = [...new Set(signals.map((s) => receivable(s)))].filter((n) => !held.has(n));
  blockEverywhere(fresh);
  for (const n of fresh) held.add(n);
  updateReadMask();
}

/** Releases signals held by block(): pending ones are delivered now (in kernel order). */
export function unblock(...signals: SignalSpec[]): void {
  mainThreadOnly('unblock');
  const numbers = [...new Set(signals.map((s) => receivable(s)))].filter((n) => held.has(n));
  for (const n of numbers) held.delete(n);
  updateReadMask();
  // Not taken: pending instances now get their default action or Node's handler.
  unblockEverywhere(numbers.filter((n) => !consumers.has(n)), false);
}

/** Names of signals pending for the process or the main thread (sigpending), e.g. while blocked. */
export function pending(): string[] {
  return native.signalPending().map((n) => byNumber.get(n)?.name ?? String(n));
}
