// Named pipes (mkfifo): a pipe with a name in the filesystem, between
// unrelated processes.
//
// Opening follows the rule of a blocking open(2) of a FIFO — a reader waits
// until a writer opens it and a writer waits for a reader — without blocking
// the event loop or a threadpool thread:
// - 'w': first a non-blocking open (O_WRONLY|O_NONBLOCK), which succeeds at
//   once when a reader exists and fails with ENXIO when none does;
// - 'r' (and 'w' without a reader): a blocking open(2) on a dedicated waiter
//   thread (src/core/waiter.ts), which the kernel wakes when the other side opens.
//   Timeout and AbortSignal interrupt it with a signal to that thread.
// - 'rw': O_RDWR never waits (Linux-specific; the process is its own partner).
// The stream is a net.Socket over the descriptor (epoll), never an fs stream.
import { chmodSync, constants as fsc, lstatSync, openSync, unlinkSync } from 'node:fs';
import { IpcError, abortError, rangeError, sys, throwIfAborted, timeoutError, toIpcError, typeError, errno } from '../core/errors.js';
import { FdStream } from '../core/fd-stream.js';
import { native } from '../core/native.js';
import { forget, identityOf, ownByName } from '../core/owned.js';
import { fileKey, filesIn, openers, type Holder } from '../core/scan.js';
import { checkBoolean, checkMode, checkOptions, checkString, show } from '../core/validate.js';
import { checkWaitOptions } from '../core/waiter.js';

export interface FifoCreateOptions {
  /** Permission bits, applied exactly (not filtered by umask). Default 0o600. */
  mode?: number | string;
  /** Succeed if a FIFO already exists at `path` (it is left as it is). Default false. */
  existOk?: boolean;
  /**
   * Remove the FIFO when this process exits (normally, by process.exit(), an
   * uncaught exception, SIGINT, SIGTERM or SIGHUP; not kill -9), if it is
   * still the file this call made. An existing FIFO accepted by `existOk` is
   * never owned. Default false.
   */
  owned?: boolean;
}

function checkPath(path: unknown): string {
  const p = checkString(path, 'path');
  if (p.length === 0 || p.includes('\0')) throw typeError('ERR_IPCKIT_INVALID_NAME', 'path must be a non-empty string without NUL');
  if (Buffer.byteLength(p) >= 4096) throw rangeError('ERR_IPCKIT_INVALID_NAME', 'path is longer than PATH_MAX (4095 bytes)');
  return p;
}

/** Creates a FIFO at `path` (mkfifo). Remove it with `fs.unlinkSync(path)` or `fifo.remove(path)`. */
export function create(path: string, options?: FifoCreateOptions): void {
  const p = checkPath(path);
  const o = checkOptions(options, 'options', ['mode', 'existOk', 'owned']) as FifoCreateOptions;
  const mode = checkMode(o.mode);
  const existOk = checkBoolean(o.existOk, 'options.existOk', false);
  const owned = checkBoolean(o.owned, 'options.owned', false);
  try {
    sys(() => native.fifoCreate(p, mode), { path: p });
  } catch (e) {
    if (!(existOk && e instanceof IpcError && e.code === 'EEXIST' && isFifo(p))) throw e;
    return;
  }
  // The exact mode: mkfifo's was filtered by the umask, which can only have
  // taken bits away meanwhile. (process.umask() cannot be set in workers.)
  sys(() => chmodSync(p, mode), { path: p });
  if (owned) ownByName('file', p, identityOf(p));
}

/** Removes the FIFO at `path` (unlink); refuses anything that is not a FIFO. */
export function remove(path: string): void {
  const p = checkPath(path);
  const st = sys(() => lstatSync(p), { path: p });
  if (!st.isFIFO()) throw new IpcError(EINVAL, 'unlink', { path: p }, 'not a FIFO');
  sys(() => unlinkSync(p), { path: p });
  forget('file', p);
}

/** Whether `path` is a FIFO (without following a final symlink). */
export function isFifo(path: string): boolean {
  try {
    return lstatSync(path).isFIFO();
  } catch {
    return false;
  }
}

export type FifoMode = 'r' | 'w' | 'rw';

export interface FifoOpenOptions {
  /** Milliseconds to wait for the other side. Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`cause`: `signal.reason`). */
  signal?: AbortSignal;
  /**
   * Wait for the other side before resolving, as a blocking open(2) does. Default true.
   * With false a reader opens at once (data arrives whenever a writer
   * writes), and a writer without a reader fails with ENXIO.
   */
  wait?: boolean;
}

const RESIGNAL_MS = 5;
const { ECANCELED, EINVAL } = errno;

/**
 * Opens a FIFO as a stream: 'r' gives a readable, 'w' a writable, 'rw' a
 * duplex (never waits). Writing after every reader has gone fails with EPIPE
 * (an 'error' event), never a SIGPIPE.
 */
export async function open(path: string, mode: FifoMode, options?: FifoOpenOptions): Promise<FdStream> {
  const p = checkPath(path);
  if (mode !== 'r' && mode !== 'w' && mode !== 'rw') {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `mode must be 'r', 'w' or 'rw', got ${show(mode)}`);
  }
  const o = checkOptions(options, 'options', ['timeout', 'signal', 'wait']) as FifoOpenOptions;
  const wait = checkWaitOptions({ timeout: o.timeout, signal: o.signal });
  const shouldWait = checkBoolean(o.wait, 'options.wait', true);
  throwIfAborted(wait.signal);
  const ctx = { path: p };
  // Refuse non-FIFOs before a blocking open could hang on, say, a device.
  const st = sys(() => lstatSync(p), ctx);
  if (!st.isFIFO()) throw new IpcError(EINVAL, 'open', ctx, 'not a FIFO (create it with fifo.create)');

  const stream = (fd: number) =>
    new FdStream(fd, { readable: mode !== 'w', writable: mode !== 'r', allowHalfOpen: mode === 'rw' });
  const flags = mode === 'r' ? fsc.O_RDONLY : mode === 'w' ? fsc.O_WRONLY : fsc.O_RDWR;
  // libuv adds O_CLOEXEC to every open.
  const nonBlocking = () => sys(() => openSync(p, flags | fsc.O_NONBLOCK), ctx);

  if (mode === 'rw' || (mode === 'r' && !shouldWait)) return stream(nonBlocking());
  if (mode === 'w') {
    try {
      return stream(nonBlocking());
    } catch (e) {
      if (!(e instanceof IpcError && e.code === 'ENXIO') || !shouldWait) throw e;
    }
  }
  const fd = await blockingOpen(p, flags, wait.timeoutNs < 0 ? undefined : wait.timeoutNs / 1e6, wait.signal);
  return stream(fd);
}

/** The blocking open(2) on a waiter thread, with timeout and abort decided here. */
async function blockingOpen(path: string, flags: number, timeoutMs: number | undefined, signal?: AbortSignal): Promise<number> {
  const ctx = { path };
  const { promise, id } = sys(() => native.fifoOpenAsync(path, flags), ctx);
  let why: 'timeout' | 'abort' | null = null;
  let resend: NodeJS.Timeout | undefined;
  const cancel = (reason: 'timeout' | 'abort') => {
    if (why) return;
    why = reason;
    native.waiterCancel(id);
    // A signal that lands just before the thread enters open(2) is lost: repeat.
    resend = setInterval(() => native.waiterCancel(id), RESIGNAL_MS);
  };
  const timer = timeoutMs === undefined ? undefined : setTimeout(() => cancel('timeout'), timeoutMs);
  const onAbort = () => cancel('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    const fd = await promise;
    if (why === 'abort') {
      // The other side arrived just as we gave up: do not leak the descriptor.
      native.fdClose(fd);
      throw abortError(signal!);
    }
    return fd;
  } catch (e) {
    if (Math.abs((e as { errno?: number }).errno ?? 0) === ECANCELED) {
      if (why === 'abort') throw abortError(signal!);
      if (why === 'timeout') {
        const side = flags === fsc.O_WRONLY ? 'no reader opened the FIFO' : 'no writer opened the FIFO';
        throw timeoutError('open', ctx, `${side} within ${timeoutMs} ms`);
      }
    }
    throw toIpcError(e, ctx);
  } finally {
    if (timer) clearTimeout(timer);
    if (resend) clearInterval(resend);
    signal?.removeEventListener('abort', onAbort);
  }
}

export interface FifoListEntry {
  /** Absolute path, symlinks in the directory resolved. */
  path: string;
  /** Permission bits. */
  mode: number;
  uid: number;
  gid: number;
  /** Open descriptors on it, and how many can read (O_RDONLY, O_RDWR) and write (O_WRONLY, O_RDWR). */
  opens: number;
  readers: number;
  writers: number;
  /** Processes holding it open. */
  pids: number[];
}

/**
 * Lists the FIFOs in the directories `dirs` (not recursive) with who holds
 * them open, from /proc/PID/fd (only processes this process may inspect;
 * all of them as root). FIFOs live anywhere in the filesystem, so there is
 * no system-wide list: name the directories.
 */
export function list(dirs: string | readonly string[]): FifoListEntry[] {
  const dirList = typeof dirs === 'string' ? [dirs] : dirs;
  if (!Array.isArray(dirList)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `dirs must be a path or an array of paths, got ${show(dirs)}`);
  dirList.forEach((d, i) => checkString(d, `dirs[${i}]`));
  const files = filesIn(dirList, (st) => st.isFIFO());
  const paths = new Set(files.map((f) => f.path));
  const open = files.length > 0 ? openers((link) => paths.has(link)).byFile : new Map<string, Holder[]>();
  return files.map(({ path, st }) => {
    const hs = open.get(fileKey(st.dev, st.ino)) ?? [];
    return {
      path,
      mode: st.mode & 0o7777,
      uid: st.uid,
      gid: st.gid,
      opens: hs.length,
      readers: hs.filter((h) => h.access !== fsc.O_WRONLY).length,
      writers: hs.filter((h) => h.access !== fsc.O_RDONLY).length,
      pids: [...new Set(hs.map((h) => h.pid))],
    };
  });
}
