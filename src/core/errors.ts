// One error class for everything the kernel refuses, and stable codes for
// everything the caller got wrong (thrown before any system call).
import { constants } from 'node:os';
import { fileURLToPath } from 'node:url';
import { getSystemErrorMap } from 'node:util';

/** Where a failing call ran into a system-wide or per-process limit. */
export interface IpcLimit {
  /** Where the limit is set, e.g. `/proc/sys/kernel/shmmax` or `RLIMIT_MSGQUEUE`. */
  name: string;
  /** Its current value, when it could be read. */
  value?: number | string;
}

export interface IpcErrorContext {
  /** A filesystem path or POSIX IPC name (`/name`), as Node's fs errors use `path`. */
  path?: string;
  /** A System V key. */
  key?: number;
  /** A System V identifier. */
  id?: number;
  /** The limit that explains EINVAL/ENOSPC/EAGAIN/EMSGSIZE, when known. */
  limit?: IpcLimit;
}

/**
 * A system call failed. `code` is the errno name (`EEXIST`, `EACCES`, ...);
 * `errno` is its number negated (ENOENT is -2), as in Node's own SystemError,
 * so `util.getSystemErrorName(err.errno)` works; the message starts with the
 * code and libuv's text for it ("ENOENT: no such file or directory, ...").
 * Its stack starts at the caller of the ipckit function, not inside ipckit.
 */
export class IpcError extends Error {
  readonly code: string;
  /** Negative, like Node's fs and net errors: `-os.constants.errno[code]`. */
  readonly errno: number;
  readonly syscall: string;
  // Declared, not initialised: an error without a key has no `key` property (as Node's SystemError).
  declare readonly path?: string;
  declare readonly key?: number;
  declare readonly id?: number;
  declare readonly limit?: IpcLimit;

  /** `errno` may be given with either sign (the kernel's positive value, or Node's negative one). */
  constructor(errno: number, syscall: string, context: IpcErrorContext = {}, detail?: string) {
    errno = Math.abs(errno);
    const code = errnoName(errno);
    const target =
      context.path !== undefined
        ? ` '${context.path}'`
        : context.key !== undefined
          ? ` key ${formatKey(context.key)}`
          : context.id !== undefined
            ? ` id ${context.id}`
            : '';
    const limit = context.limit
      ? ` (limit ${context.limit.name}${context.limit.value !== undefined ? ` = ${context.limit.value}` : ''})`
      : '';
    // fromCaller() captures the stack: skip V8's own capture here.
    const stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${code}: ${describe(errno)}, ${syscall}${target}${limit}${detail ? `: ${detail}` : ''}`);
    Error.stackTraceLimit = stackLimit;
    this.name = 'IpcError';
    this.code = code;
    this.errno = -errno;
    this.syscall = syscall;
    if (context.path !== undefined) this.path = context.path;
    if (context.key !== undefined) this.key = context.key;
    if (context.id !== undefined) this.id = context.id;
    if (context.limit !== undefined) this.limit = context.limit;
    fromCaller(this);
  }
}

/**
 * Linux errno numbers by name, positive as the kernel returns them
 * (`errno.EAGAIN` is 11): ipckit's one source for them, taken from Node.
 */
export const errno = constants.errno;

/**
 * The one timeout error of ipckit: IpcError ETIMEDOUT. `syscall` names the
 * blocking call the time limit cut short (`sem_clockwait`, `mq_timedreceive`,
 * `open` of a FIFO...), or, where ipckit keeps the time across several calls,
 * the operation (`request`, `fork`), as Node's dns errors name `queryA`.
 */
export function timeoutError(syscall: string, context: IpcErrorContext = {}, detail?: string): IpcError {
  return new IpcError(errno.ETIMEDOUT, syscall, context, detail);
}

/**
 * An operation cancelled through its AbortSignal, shaped as Node's own
 * AbortError (what `timers/promises` and `events.once` reject with):
 * `code` 'ABORT_ERR', `name` 'AbortError', `cause` the signal's reason.
 */
export class AbortError extends Error {
  readonly code = 'ABORT_ERR';

  constructor(message = 'The operation was aborted', options?: ErrorOptions) {
    const stackLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(message, options);
    Error.stackTraceLimit = stackLimit;
    this.name = 'AbortError';
    fromCaller(this);
  }
}

/** The error a wait cancelled by `signal` rejects with. */
export function abortError(signal: AbortSignal): AbortError {
  return new AbortError(undefined, { cause: signal.reason });
}

/** `signal.throwIfAborted()`, with the AbortError shape every ipckit wait uses. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

function errnoName(errno: number): string {
  return SYSTEM_ERRORS.get(-errno)?.[0] ?? LINUX_ERRORS_LIBUV_LACKS[errno]?.[0] ?? `E${errno}`;
}

function describe(errno: number): string {
  // libuv's texts are the ones Node users already know from fs and net errors.
  return SYSTEM_ERRORS.get(-errno)?.[1] ?? LINUX_ERRORS_LIBUV_LACKS[errno]?.[1] ?? `unknown system error ${errno}`;
}

/** libuv's names and texts, by negative errno (what Node's fs and net errors use). */
const SYSTEM_ERRORS: Map<number, [string, string]> = getSystemErrorMap();

/**
 * Every other Linux errno (1 ... 133): name and glibc's strerror() text,
 * written as libuv writes its texts (lower case). libuv has no entry for
 * these, so util.getSystemErrorName() calls them "Unknown system error".
 */
const LINUX_ERRORS_LIBUV_LACKS: Record<number, [string, string]> = {
  8: ['ENOEXEC', 'exec format error'],
  10: ['ECHILD', 'no child processes'],
  15: ['ENOTBLK', 'block device required'],
  33: ['EDOM', 'numerical argument out of domain'],
  35: ['EDEADLK', 'resource deadlock avoided'],
  37: ['ENOLCK', 'no locks available'],
  42: ['ENOMSG', 'no message of desired type'],
  43: ['EIDRM', 'identifier removed'],
  44: ['ECHRNG', 'channel number out of range'],
  45: ['EL2NSYNC', 'level 2 not synchronized'],
  46: ['EL3HLT', 'level 3 halted'],
  47: ['EL3RST', 'level 3 reset'],
  48: ['ELNRNG', 'link number out of range'],
  50: ['ENOCSI', 'no CSI structure available'],
  51: ['EL2HLT', 'level 2 halted'],
  52: ['EBADE', 'invalid exchange'],
  53: ['EBADR', 'invalid request descriptor'],
  54: ['EXFULL', 'exchange full'],
  55: ['ENOANO', 'no anode'],
  56: ['EBADRQC', 'invalid request code'],
  57: ['EBADSLT', 'invalid slot'],
  59: ['EBFONT', 'bad font file format'],
  60: ['ENOSTR', 'device not a stream'],
  62: ['ETIME', 'timer expired'],
  63: ['ENOSR', 'out of streams resources'],
  65: ['ENOPKG', 'package not installed'],
  66: ['EREMOTE', 'object is remote'],
  67: ['ENOLINK', 'link has been severed'],
  68: ['EADV', 'advertise error'],
  69: ['ESRMNT', 'srmount error'],
  70: ['ECOMM', 'communication error on send'],
  72: ['EMULTIHOP', 'multihop attempted'],
  73: ['EDOTDOT', 'RFS specific error'],
  74: ['EBADMSG', 'bad message'],
  76: ['ENOTUNIQ', 'name not unique on network'],
  77: ['EBADFD', 'file descriptor in bad state'],
  78: ['EREMCHG', 'remote address changed'],
  79: ['ELIBACC', 'can not access a needed shared library'],
  80: ['ELIBBAD', 'accessing a corrupted shared library'],
  81: ['ELIBSCN', '.lib section in a.out corrupted'],
  82: ['ELIBMAX', 'attempting to link in too many shared libraries'],
  83: ['ELIBEXEC', 'cannot exec a shared library directly'],
  85: ['ERESTART', 'interrupted system call should be restarted'],
  86: ['ESTRPIPE', 'streams pipe error'],
  87: ['EUSERS', 'too many users'],
  96: ['EPFNOSUPPORT', 'protocol family not supported'],
  102: ['ENETRESET', 'network dropped connection on reset'],
  109: ['ETOOMANYREFS', 'too many references: cannot splice'],
  115: ['EINPROGRESS', 'operation now in progress'],
  116: ['ESTALE', 'stale file handle'],
  117: ['EUCLEAN', 'structure needs cleaning'],
  118: ['ENOTNAM', 'not a XENIX named type file'],
  119: ['ENAVAIL', 'no XENIX semaphores available'],
  120: ['EISNAM', 'is a named type file'],
  122: ['EDQUOT', 'disk quota exceeded'],
  123: ['ENOMEDIUM', 'no medium found'],
  124: ['EMEDIUMTYPE', 'wrong medium type'],
  126: ['ENOKEY', 'required key not available'],
  127: ['EKEYEXPIRED', 'key has expired'],
  128: ['EKEYREVOKED', 'key has been revoked'],
  129: ['EKEYREJECTED', 'key was rejected by service'],
  130: ['EOWNERDEAD', 'owner died'],
  131: ['ENOTRECOVERABLE', 'state not recoverable'],
  132: ['ERFKILL', 'operation not possible due to RF-kill'],
  133: ['EHWPOISON', 'memory page has hardware error'],
};

// ---- stacks that start at the caller ---------------------------------------

/** Where ipckit's own code lives: compiled (dist/) and, with source maps, its sources (src/). */
const LIBRARY_PLACES = [new URL('../', import.meta.url), new URL('../../src/', import.meta.url)].flatMap((u) => [u.href, fileURLToPath(u)]);
/** Frames of ipckit's own calls that may sit above the caller's. */
const LIBRARY_DEPTH = 12;
/** Errors ipckit made (their stack may be moved to a later caller, see fromHere()). */
const OURS = Symbol('ipckit error');

function isLibraryFrame(line: string): boolean {
  return LIBRARY_PLACES.some((place) => line.includes(place));
}

/**
 * Gives `err` a stack that starts at the first frame outside ipckit — the
 * caller's — instead of at sys() or the native wrapper. Formatted lazily,
 * on the first read of `err.stack`, as V8 does.
 */
function fromCaller<E extends Error>(err: E): E {
  const limit = Error.stackTraceLimit;
  if (typeof limit !== 'number') return err;
  const site: { stack?: string } = {};
  Error.stackTraceLimit = limit + LIBRARY_DEPTH;
  Error.captureStackTrace(site, fromCaller);
  Error.stackTraceLimit = limit;
  const settle = (value: unknown) => Object.defineProperty(err, 'stack', { value, writable: true, configurable: true, enumerable: false });
  Object.defineProperty(err, 'stack', {
    configurable: true,
    enumerable: false,
    get() {
      // The first line of `site.stack` is its own header ("Error").
      const frames = (site.stack ?? '').split('\n').slice(1);
      let first = 0;
      while (first < frames.length && isLibraryFrame(frames[first]!)) first++;
      if (first === frames.length) first = 0; // nothing but ipckit (a timer): keep what there is
      const value = [Error.prototype.toString.call(err), ...frames.slice(first, first + limit)].join('\n');
      settle(value);
      return value;
    },
    set: settle,
  });
  Object.defineProperty(err, OURS, { value: true });
  return err;
}

/**
 * Awaits `promise` and rethrows its rejection with the stack taken here. An
 * error made in a timer or event callback (a timeout, an abort, a reply that
 * never came) has no caller in its stack; returned from a public function and
 * awaited by the caller, fromHere() is an async step of the caller's chain,
 * so V8's async stack trace names the caller's frames.
 */
export async function fromHere<T>(promise: Promise<T>): Promise<T> {
  try {
    return await promise;
  } catch (e) {
    if (e instanceof Error && (e as unknown as Record<symbol, unknown>)[OURS]) fromCaller(e);
    throw e;
  }
}

export function formatKey(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
}

/** Shape of what the native layer and Node's fs throw for a failed system call. */
interface RawSystemError {
  errno: number;
  syscall: string;
}

function isRawSystemError(e: unknown): e is RawSystemError {
  return (
    typeof e === 'object' &&
    e !== null &&
    typeof (e as RawSystemError).errno === 'number' &&
    typeof (e as RawSystemError).syscall === 'string'
  );
}

/**
 * Runs one system call (native or node:fs) and turns its failure into an
 * IpcError naming the object. `limitFor` may name the limit behind an errno.
 */
export function sys<T>(
  fn: () => T,
  context: IpcErrorContext = {},
  limitFor?: (code: string, syscall: string) => IpcLimit | undefined,
): T {
  try {
    return fn();
  } catch (e) {
    throw toIpcError(e, context, limitFor);
  }
}

export function toIpcError(
  e: unknown,
  context: IpcErrorContext = {},
  limitFor?: (code: string, syscall: string) => IpcLimit | undefined,
): unknown {
  if (e instanceof IpcError || !isRawSystemError(e)) return e;
  // Node's fs reports negative errno values; the native layer positive ones.
  const errno = Math.abs(e.errno);
  const limit = limitFor?.(errnoName(errno), e.syscall);
  return new IpcError(errno, e.syscall, limit ? { ...context, limit } : context);
}

type MisuseCode =
  | 'ERR_IPCKIT_INVALID_ARG_TYPE'
  | 'ERR_IPCKIT_INVALID_ARG_VALUE'
  | 'ERR_IPCKIT_INVALID_NAME'
  | 'ERR_IPCKIT_OUT_OF_RANGE'
  | 'ERR_IPCKIT_UNALIGNED_OFFSET'
  | 'ERR_IPCKIT_EMPTY_FILE'
  | 'ERR_IPCKIT_BEYOND_EOF'
  | 'ERR_IPCKIT_SIZE_MISMATCH'
  | 'ERR_IPCKIT_READ_ONLY'
  | 'ERR_IPCKIT_CLOSED'
  | 'ERR_IPCKIT_INVALID_URL'
  | 'ERR_IPCKIT_MESSAGE_TOO_LARGE'
  | 'ERR_IPCKIT_BAD_FRAME'
  | 'ERR_IPCKIT_CODEC'
  | 'ERR_IPCKIT_REMOTE'
  | 'ERR_IPCKIT_PEER_LOST'
  | 'ERR_IPCKIT_MESSAGES_LOST'
  | 'ERR_IPCKIT_HANDSHAKE'
  | 'ERR_IPCKIT_TLS'
  | 'ERR_IPCKIT_LOAN'
  | 'ERR_IPCKIT_ALREADY_ATTACHED'
  | 'ERR_IPCKIT_NOT_OWNER'
  | 'ERR_IPCKIT_DEADLOCK'
  | 'ERR_IPCKIT_UNSUPPORTED'
  | 'ERR_IPCKIT_UNKNOWN_SIGNAL'
  | 'ERR_IPCKIT_SIGNAL_UNCATCHABLE'
  | 'ERR_IPCKIT_SIGNAL_RESERVED'
  | 'ERR_IPCKIT_NOT_MAIN_THREAD'
  | 'ERR_IPCKIT_WRITE_ONLY'
  | 'ERR_IPCKIT_ONE_WAY'
  | 'ERR_IPCKIT_UNKNOWN_OPTION'
  | 'ERR_IPCKIT_PROTOCOL'
  | 'ERR_IPCKIT_MISSING_PACKAGE';

export type IpcMisuseError = (TypeError | RangeError | Error) & { code: MisuseCode };

function tag<E extends Error>(err: E, code: MisuseCode): E & { code: MisuseCode } {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, configurable: true, writable: true });
  return fromCaller(err) as E & { code: MisuseCode };
}

export function typeError(code: MisuseCode, message: string): TypeError & { code: MisuseCode } {
  return tag(new TypeError(message), code);
}

export function rangeError(code: MisuseCode, message: string): RangeError & { code: MisuseCode } {
  return tag(new RangeError(message), code);
}

export function stateError(code: MisuseCode, message: string): Error & { code: MisuseCode } {
  return tag(new Error(message), code);
}
