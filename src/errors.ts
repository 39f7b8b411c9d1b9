// One error class for everything the kernel refuses, and stable codes for
// everything the caller got wrong (thrown before any system call).
import { readFileSync } from 'node:fs';
import { getSystemErrorName } from 'node:util';

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
 * `errno` is its number negated (ENOENT is -2), as in Node's own SystemError.
 */
export class IpcError extends Error {
  readonly code: string;
  /** Negative, like Node's fs and net errors: `-os.constants.errno[code]`. */
  readonly errno: number;
  readonly syscall: string;
  readonly path?: string;
  readonly key?: number;
  readonly id?: number;
  readonly limit?: IpcLimit;

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
    super(`${code}: ${describe(errno)}, ${syscall}${target}${limit}${detail ? `: ${detail}` : ''}`);
    this.name = 'IpcError';
    this.code = code;
    this.errno = -errno;
    this.syscall = syscall;
    if (context.path !== undefined) this.path = context.path;
    if (context.key !== undefined) this.key = context.key;
    if (context.id !== undefined) this.id = context.id;
    if (context.limit !== undefined) this.limit = context.limit;
  }
}

function errnoName(errno: number): string {
  const extra = ERRNO_NAMES_LIBUV_LACKS[errno];
  if (extra) return extra;
  try {
    return getSystemErrorName(-errno);
  } catch {
    return `E${errno}`;
  }
}

/** Linux errno values libuv has no name for (getSystemErrorName says "Unknown system error"). */
const ERRNO_NAMES_LIBUV_LACKS: Record<number, string> = {
  35: 'EDEADLK',
  42: 'ENOMSG',
  43: 'EIDRM',
  62: 'ETIME',
  130: 'EOWNERDEAD',
  131: 'ENOTRECOVERABLE',
};

function describe(errno: number): string {
  // libuv's messages are the ones Node users already know from fs errors.
  const text = LIBUV_TEXT[errnoName(errno)];
  return text ?? `errno ${errno}`;
}

const LIBUV_TEXT: Record<string, string> = {
  E2BIG: 'argument list too long',
  EACCES: 'permission denied',
  EADDRINUSE: 'address already in use',
  EAGAIN: 'resource temporarily unavailable',
  EBADF: 'bad file descriptor',
  EBUSY: 'resource busy or locked',
  EEXIST: 'already exists',
  EFAULT: 'bad address in system call argument',
  EFBIG: 'file too large',
  EINTR: 'interrupted system call',
  EINVAL: 'invalid argument',
  EIDRM: 'identifier removed',
  ENOMSG: 'no message of desired type',
  EDEADLK: 'resource deadlock avoided',
  EMFILE: 'too many open files',
  EMSGSIZE: 'message too long',
  ENAMETOOLONG: 'name too long',
  ENFILE: 'file table overflow',
  ENODEV: 'no such device',
  ENOENT: 'no such file or directory',
  ENOMEM: 'not enough memory',
  ENOSPC: 'no space left on device',
  ENOSYS: 'function not implemented',
  EOVERFLOW: 'value too large for defined data type',
  EPERM: 'operation not permitted',
  EPIPE: 'broken pipe',
  ERANGE: 'result out of range',
  ESRCH: 'no such process',
  ETIMEDOUT: 'connection timed out',
};

export function formatKey(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, '0')}`;
}

/** Reads a numeric limit such as `/proc/sys/kernel/shmmax`, for error messages. */
export function readLimit(path: string): IpcLimit {
  try {
    const raw = readFileSync(path, 'utf8').trim();
    const n = Number(raw);
    return { name: path, value: Number.isSafeInteger(n) ? n : raw };
  } catch {
    return { name: path };
  }
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
  | 'ERR_IPCKIT_TIMEOUT'
  | 'ERR_IPCKIT_REMOTE'
  | 'ERR_IPCKIT_PEER_LOST'
  | 'ERR_IPCKIT_HANDSHAKE'
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
  | 'ERR_IPCKIT_PROTOCOL';

export type IpcMisuseError = (TypeError | RangeError | Error) & { code: MisuseCode };

function tag<E extends Error>(err: E, code: MisuseCode): E & { code: MisuseCode } {
  Object.defineProperty(err, 'code', { value: code, enumerable: true, configurable: true, writable: true });
  return err as E & { code: MisuseCode };
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
