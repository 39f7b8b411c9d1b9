// Anonymous pipes (pipe2) and popen(3) (a child connected by one pipe): each
// end is a Node stream over a real kernel descriptor that can be handed to a
// child process. Also the socket type names that socketpair() (socketpair.ts,
// a full-duplex pipe) and Unix sockets take.
import { spawn, type ChildProcess } from 'node:child_process';
import { sys, toIpcError, typeError, type IpcLimit } from '../core/errors.js';
import { fileLimit, readLimit } from '../core/limits.js';
import { FdStream } from '../core/fd-stream.js';
import { native } from '../core/native.js';
import { checkBoolean, checkInteger, checkOptions, checkString, show } from '../core/validate.js';

/** One end of an anonymous pipe: readable or writable, never both. */
export class PipeEnd extends FdStream {}

export interface PipeOptions {
  /** Pipe buffer size in bytes (F_SETPIPE_SZ, rounded up by the kernel to a power-of-two pages). Default: the kernel's (64 KiB). */
  capacity?: number;
}

function capacityLimit(code: string): IpcLimit | undefined {
  if (code === 'EPERM' || code === 'EINVAL') return readLimit('/proc/sys/fs/pipe-max-size');
  return fileLimit(code);
}

/**
 * Creates a pipe: `[readable, writable]`. Give one end to a child in
 * `spawn(cmd, args, { stdio: [readable, 'inherit', 'inherit'] })`, then
 * `destroy()` your copy of it so the reader sees end-of-file when the writer
 * finishes. Writing after every reader has gone fails with EPIPE (an 'error'
 * event), never a SIGPIPE that kills the process.
 */
export function pipe(options?: PipeOptions): [PipeEnd, PipeEnd] {
  const o = checkOptions(options, 'options', ['capacity']) as PipeOptions;
  const capacity = checkInteger(o.capacity, 'options.capacity', 1, 0x7fffffff, undefined);
  const [r, w] = sys(() => native.pipeCreate(false), {}, fileLimit);
  try {
    if (capacity !== undefined) sys(() => native.pipeSetCapacity(w, capacity), {}, capacityLimit);
    return [new PipeEnd(r, { readable: true, writable: false }), new PipeEnd(w, { readable: false, writable: true })];
  } catch (e) {
    native.fdClose(r);
    native.fdClose(w);
    throw e;
  }
}

/** The pipe buffer size of a pipe or FIFO end (F_GETPIPE_SZ). */
export function capacity(end: PipeEnd | number): number {
  const fd = typeof end === 'number' ? end : end.fd;
  return sys(() => native.pipeGetCapacity(fd));
}

export interface ExitStatus {
  /** Exit code, or null when a signal ended the process. */
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PopenOptions {
  /** Run `command` through /bin/sh -c (like popen(3)). Default true when `args` is absent, false otherwise. */
  shell?: boolean;
  /** Arguments: the command then runs directly, without a shell. */
  args?: string[];
  cwd?: string;
  env?: NodeJS.ProcessEnv;
}

/** A child process connected to us by one pipe, as popen(3) makes. Disposing it is close(). */
export interface Popen extends AsyncDisposable {
  /** Mode 'r': the child's stdout. Mode 'w': the child's stdin. */
  readonly stream: PipeEnd;
  readonly pid: number;
  readonly child: ChildProcess;
  /** Settles when the child exits (rejects only if it could not be started). */
  readonly exited: Promise<ExitStatus>;
  /** Like pclose(3): closes our end of the pipe and waits for the child. */
  close(): Promise<ExitStatus>;
}

/**
 * Starts `command` with its stdout ('r') or stdin ('w') connected to a real
 * pipe(2) whose other end is returned as a stream; the child's other stdio is
 * inherited, as with popen(3).
 */
export function popen(command: string, mode: 'r' | 'w', options?: PopenOptions): Popen {
  checkString(command, 'command');
  if (command.length === 0) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'command must not be empty');
  if (mode !== 'r' && mode !== 'w') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `mode must be 'r' or 'w', got ${show(mode)}`);
  const o = checkOptions(options, 'options', ['shell', 'args', 'cwd', 'env']) as PopenOptions;
  if (o.args !== undefined && (!Array.isArray(o.args) || o.args.some((a) => typeof a !== 'string'))) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.args must be an array of strings');
  }
  const shell = checkBoolean(o.shell, 'options.shell', o.args === undefined);
  if (shell && o.args !== undefined) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.args cannot be used with options.shell');

  const [r, w] = sys(() => native.pipeCreate(false), {}, fileLimit);
  const [ours, theirs] = mode === 'r' ? [r, w] : [w, r];
  let child: ChildProcess;
  try {
    const stdio: Array<'inherit' | number> = mode === 'r' ? ['inherit', theirs, 'inherit'] : [theirs, 'inherit', 'inherit'];
    const [file, argv] = shell ? ['/bin/sh', ['-c', command]] : [command, o.args ?? []];
    child = spawn(file, argv, { stdio, cwd: o.cwd, env: o.env });
  } catch (e) {
    native.fdClose(ours);
    throw toIpcError(e, { path: command });
  } finally {
    native.fdClose(theirs);
  }
  const stream = new PipeEnd(ours, { readable: mode === 'r', writable: mode === 'w' });
  // A child that exits without reading makes our writes fail with EPIPE;
  // that is reported through `exited`/the write callbacks, not as an
  // unhandled 'error' that would crash the process.
  stream.on('error', () => {});
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    child.once('error', (e) => {
      stream.destroy();
      reject(toIpcError(e, { path: command }));
    });
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  exited.catch(() => {}); // observed through close() or by the caller
  const close = async (): Promise<ExitStatus> => {
    if (mode === 'w') stream.end();
    else stream.destroy();
    return exited;
  };
  return {
    stream,
    pid: child.pid ?? -1,
    child,
    exited,
    close,
    async [Symbol.asyncDispose]() {
      await close();
    },
  };
}

/** The socket types socketpair() and the Unix sockets take, by name. */
export type SocketPairType = 'stream' | 'seqpacket' | 'dgram';

export function socketTypeNumber(type: unknown, what = 'options.type'): number {
  switch (type ?? 'stream') {
    case 'stream':
      return native.pipeConstants.SOCK_STREAM;
    case 'seqpacket':
      return native.pipeConstants.SOCK_SEQPACKET;
    case 'dgram':
      return native.pipeConstants.SOCK_DGRAM;
    default:
      throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `${what} must be 'stream', 'seqpacket' or 'dgram', got ${show(type)}`);
  }
}

