// System V message queues (msgget/msgsnd/msgrcv/msgctl): kernel-persistent
// lists of typed messages. A receiver picks by type: the first message, the
// first of a type, the first not of a type, or the lowest type up to a bound.
//
// msgsnd/msgrcv cannot be polled, so a send or receive that has to wait runs
// on a dedicated waiter thread (src/core/waiter.ts, native/core_waiter.c), never on the
// libuv threadpool; it is cancellable (AbortSignal, timeout, close()) and
// process.exit() wakes it. A non-blocking attempt is made first on the JS
// thread, so a queue that is not empty/full costs one system call.
import { IpcError, stateError, sys, throwIfAborted, toIpcError, typeError, errno, type IpcErrorContext, type IpcLimit } from '../core/errors.js';
import { readLimit } from '../core/limits.js';
import { messageBytes, type MessageData } from './mq-posix.js';
import { native } from '../core/native.js';
import { forget, ownById } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { checkKey, ftok, ownerChanges, ownershipOf, readSysvTable, sysvTime, type SysvKey, type SysvOwnership } from '../core/sysv-key.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, show } from '../core/validate.js';
import { awaitNative, checkWaitOptions, type CheckedWait } from '../core/waiter.js';

export interface SysvMessage {
  /** The message type (mtype), > 0. */
  type: number;
  data: Buffer;
}

export interface SysvMqGetOptions {
  /** Create the queue if the key has none (IPC_CREAT). Default false ('private': always creates). */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (IPC_EXCL). Default false. */
  exclusive?: boolean;
  /** Permission bits of a new queue. Default 0o600. */
  mode?: number | string;
  /**
   * Remove the queue (IPC_RMID) when this process exits (normally, by
   * process.exit(), an uncaught exception, SIGINT, SIGTERM or SIGHUP; not
   * kill -9). Applies only if this call creates it (see `queue.owned`).
   * Needs `create` (implied by 'private'). Default false.
   */
  owned?: boolean;
}

export interface SysvSendOptions {
  /** Do not wait when the queue is full: reject with EAGAIN (IPC_NOWAIT). Default false. */
  nowait?: boolean;
  /** Milliseconds to wait for room at most; then ETIMEDOUT. Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`cause`: `signal.reason`) and nothing is sent. */
  signal?: AbortSignal;
}

export interface SysvReceiveOptions {
  /**
   * Which message (msgrcv(2) msgtyp): 0 (default) the first in the queue;
   * n > 0 the first of type n (with `except`: the first NOT of type n);
   * n < 0 the first of the lowest type <= |n|.
   */
  type?: number;
  /** With a positive type: the first message whose type differs (MSG_EXCEPT). */
  except?: boolean;
  /** Truncate a message longer than maxSize instead of failing with E2BIG (MSG_NOERROR). */
  noError?: boolean;
  /** Do not wait when no message matches: reject with ENOMSG (IPC_NOWAIT). */
  nowait?: boolean;
  /** Largest message accepted, in bytes. Default /proc/sys/kernel/msgmax. */
  maxSize?: number;
  /** Milliseconds to wait at most; then ETIMEDOUT. Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`cause`: `signal.reason`) and nothing is taken. */
  signal?: AbortSignal;
}

export interface SysvMqStat extends SysvOwnership {
  /** msg_perm.__seq: slot usage sequence number (part of the id). */
  seq: number;
  /** Last msgsnd / msgrcv / change; null when it never happened. */
  stime: Date | null;
  rtime: Date | null;
  ctime: Date | null;
  /** Bytes of message data in the queue (__msg_cbytes). */
  cbytes: number;
  /** Messages in the queue (msg_qnum). */
  qnum: number;
  /** Capacity in bytes (msg_qbytes); it also caps the number of messages. */
  qbytes: number;
  /** Pid of the last msgsnd / msgrcv. */
  lspid: number;
  lrpid: number;
}

export interface SysvMqSetOptions {
  /** New capacity in bytes (msg_qbytes). Above /proc/sys/kernel/msgmnb needs CAP_SYS_RESOURCE. */
  qbytes?: number;
  mode?: number | string;
  uid?: number;
  gid?: number;
}

const KERNEL = '/proc/sys/kernel';
const { E2BIG, EAGAIN, ENOMSG, ETIMEDOUT } = errno;
const LONG_BYTES = native.mqSysvConstants.LONG_BYTES;
const MAX_TYPE = Number.MAX_SAFE_INTEGER;

function msgmax(): number {
  const v = readLimit(`${KERNEL}/msgmax`).value;
  return typeof v === 'number' ? v : 8192;
}

interface ReceiveSpec {
  type: number;
  flags: number;
  maxSize: number;
  nowait: boolean;
}

/** SysvReceiveOptions, and the subsets the non-waiting and iterating calls take. */
const RECEIVE_OPTIONS = ['type', 'except', 'noError', 'nowait', 'maxSize', 'timeout', 'signal'] as const;
const TRY_RECEIVE_OPTIONS = ['type', 'except', 'noError', 'maxSize'] as const;
const ITERATE_OPTIONS = ['type', 'except', 'noError', 'maxSize', 'signal'] as const;
/** SysvSendOptions; sendSync() knows `signal` too, to refuse it as an asynchronous-only option. */
const SEND_OPTIONS = ['nowait', 'timeout', 'signal'] as const;

function checkReceive(options: unknown, known: readonly string[]): ReceiveSpec & { o: SysvReceiveOptions } {
  const o = checkOptions(options as object | undefined, 'options', known) as SysvReceiveOptions;
  const type = checkInteger(o.type, 'options.type', -MAX_TYPE, MAX_TYPE, 0);
  const except = checkBoolean(o.except, 'options.except', false);
  const noError = checkBoolean(o.noError, 'options.noError', false);
  const nowait = checkBoolean(o.nowait, 'options.nowait', false);
  const maxSize = checkInteger(o.maxSize, 'options.maxSize', 0, 0x7fffffff, undefined) ?? msgmax();
  if (except && type <= 0) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.except needs a positive options.type (the type to skip), got type ${type}`);
  }
  const { MSG_EXCEPT, MSG_NOERROR } = native.mqSysvConstants;
  const flags = (except ? MSG_EXCEPT : 0) | (noError ? MSG_NOERROR : 0);
  return { type, flags, maxSize, nowait, o };
}

function checkType(type: unknown): number {
  return checkInteger(type, 'type', 1, MAX_TYPE);
}

/** A System V message queue, by id. Nothing to release: `close()` only cancels this handle's waits. */
export class SysvQueue implements Disposable, AsyncIterable<SysvMessage> {
  readonly id: number;
  /** The key it was found by (0 for 'private' or fromId() of a private queue). */
  readonly key: number;
  /** This call created the queue with `owned: true`: it is removed when this process exits. */
  readonly owned: boolean;
  readonly #pending = new Set<AbortController>();

  /** @internal */
  constructor(id: number, key: number, owned = false) {
    this.id = id;
    this.key = key;
    this.owned = owned;
  }

  get #context(): IpcErrorContext {
    return { id: this.id };
  }

  /** Sends now if there is room: true if sent, false if the queue is full. */
  trySend(type: number, data: MessageData): boolean {
    const t = checkType(type);
    const bytes = messageBytes(data);
    return this.#sys(() => native.mqSysvTrySend(this.id, t, bytes), 'msgsnd', bytes.byteLength);
  }

  /** Sends as many of `messages` as fit now, in order, all of `type`; returns how many. */
  trySendMany(type: number, messages: readonly MessageData[]): number {
    const t = checkType(type);
    if (!Array.isArray(messages)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `messages must be an array, got ${show(messages)}`);
    const list = messages.map((m, i) => messageBytes(m, `messages[${i}]`));
    return this.#sys(() => native.mqSysvSendMany(this.id, t, list, 0), 'msgsnd', Math.max(0, ...list.map((b) => b.byteLength)));
  }

  /**
   * Sends a message of `type` (> 0), waiting for room on a waiter thread.
   * With `nowait` a full queue rejects with EAGAIN naming the queue's
   * capacity; `timeout` rejects with ETIMEDOUT; an abort rejects with an
   * AbortError. Nothing is sent when the Promise rejects.
   */
  async send(type: number, data: MessageData, options?: SysvSendOptions): Promise<void> {
    const t = checkType(type);
    const bytes = messageBytes(data);
    const o = checkOptions(options, 'options', SEND_OPTIONS) as SysvSendOptions;
    const nowait = checkBoolean(o.nowait, 'options.nowait', false);
    const wait = checkWaitOptions({ timeout: o.timeout, signal: o.signal });
    throwIfAborted(wait.signal);
    if (this.#sys(() => native.mqSysvTrySend(this.id, t, bytes), 'msgsnd', bytes.byteLength)) return;
    if (nowait) throw this.#full(EAGAIN, 'msgsnd');
    await this.#wait(wait, (ns) => native.mqSysvSendAsync(this.id, t, bytes, ns), 'msgsnd', bytes.byteLength);
  }

  /** Like send(), blocking this thread (for worker threads). */
  sendSync(type: number, data: MessageData, options?: { nowait?: boolean; timeout?: number }): void {
    const t = checkType(type);
    const bytes = messageBytes(data);
    const o = checkOptions(options, 'options', SEND_OPTIONS) as { nowait?: boolean; timeout?: number; signal?: AbortSignal };
    const nowait = checkBoolean(o.nowait, 'options.nowait', false);
    const { timeoutNs } = checkWaitOptions({ timeout: o.timeout, signal: o.signal }, false);
    if (this.#sys(() => native.mqSysvTrySend(this.id, t, bytes), 'msgsnd', bytes.byteLength)) return;
    if (nowait) throw this.#full(EAGAIN, 'msgsnd');
    this.#sys(() => native.mqSysvSendSync(this.id, t, bytes, timeoutNs), 'msgsnd', bytes.byteLength);
  }

  /** Takes the selected message if there is one now, else null. Options as receive(), less the waiting ones. */
  tryReceive(options?: Omit<SysvReceiveOptions, 'nowait' | 'timeout' | 'signal'>): SysvMessage | null {
    const r = checkReceive(options, TRY_RECEIVE_OPTIONS);
    return this.#sys(() => native.mqSysvTryReceive(this.id, r.maxSize, r.type, r.flags), 'msgrcv', 0, r.maxSize);
  }

  /** Takes up to `max` selected messages that are there now. */
  tryReceiveMany(max: number, options?: Omit<SysvReceiveOptions, 'nowait' | 'timeout' | 'signal'>): SysvMessage[] {
    const n = checkInteger(max, 'max', 1, 0xffffffff);
    const r = checkReceive(options, TRY_RECEIVE_OPTIONS);
    return this.#sys(() => native.mqSysvReceiveMany(this.id, r.maxSize, r.type, r.flags, n), 'msgrcv', 0, r.maxSize);
  }

  /**
   * Receives the message selected by `type`/`except` (see SysvReceiveOptions),
   * waiting on a waiter thread. `nowait` rejects with ENOMSG when none
   * matches. A message longer than `maxSize` fails with E2BIG and stays in
   * the queue, unless `noError` truncates it.
   */
  async receive(options?: SysvReceiveOptions): Promise<SysvMessage> {
    const r = checkReceive(options, RECEIVE_OPTIONS);
    const wait = checkWaitOptions({ timeout: r.o.timeout, signal: r.o.signal });
    throwIfAborted(wait.signal);
    const now = this.#sys(() => native.mqSysvTryReceive(this.id, r.maxSize, r.type, r.flags), 'msgrcv', 0, r.maxSize);
    if (now) return now;
    if (r.nowait) throw new IpcError(ENOMSG, 'msgrcv', this.#context, 'no message of the requested type');
    // The waiter thread writes the raw struct msgbuf { long mtype; char mtext[] } here.
    const buffer = Buffer.allocUnsafeSlow(LONG_BYTES + r.maxSize);
    const n = await this.#wait(wait, (ns) => native.mqSysvReceiveAsync(this.id, r.maxSize, r.type, r.flags, ns, buffer), 'msgrcv', 0, r.maxSize);
    return { type: Number(buffer.readBigInt64LE(0)), data: Buffer.from(buffer.subarray(LONG_BYTES, LONG_BYTES + n)) };
  }

  /** Like receive(), blocking this thread (for worker threads). */
  receiveSync(options?: Omit<SysvReceiveOptions, 'signal'>): SysvMessage {
    // `signal` is known here so that it is refused as an asynchronous-only option.
    const r = checkReceive(options, RECEIVE_OPTIONS);
    const { timeoutNs } = checkWaitOptions({ timeout: r.o.timeout, signal: r.o.signal }, false);
    const now = this.#sys(() => native.mqSysvTryReceive(this.id, r.maxSize, r.type, r.flags), 'msgrcv', 0, r.maxSize);
    if (now) return now;
    if (r.nowait) throw new IpcError(ENOMSG, 'msgrcv', this.#context, 'no message of the requested type');
    return this.#sys(() => native.mqSysvReceiveSync(this.id, r.maxSize, r.type, r.flags, timeoutNs), 'msgrcv', 0, r.maxSize);
  }

  /**
   * Receives selected messages until close() (or the loop is left):
   * `for await (const m of queue.messages({ type: 3 }))`. Breaking out takes
   * nothing beyond the last message yielded.
   */
  async *messages(options?: Omit<SysvReceiveOptions, 'nowait' | 'timeout'>): AsyncGenerator<SysvMessage, void, undefined> {
    const o = { ...(checkOptions(options, 'options', ITERATE_OPTIONS) as SysvReceiveOptions), nowait: false, timeout: undefined };
    checkReceive(o, RECEIVE_OPTIONS);
    for (;;) {
      try {
        yield await this.receive(o);
      } catch (e) {
        if ((e as { code?: string }).code === 'ERR_IPCKIT_CLOSED') return;
        throw e;
      }
    }
  }

  /** `for await (const m of queue)`: every message in queue order, until close(). */
  [Symbol.asyncIterator](): AsyncIterator<SysvMessage> {
    return this.messages();
  }

  /** msgctl(IPC_STAT): every msqid_ds field. */
  stat(): SysvMqStat {
    const ds = sys(() => native.mqSysvStat(this.id), this.#context);
    return {
      ...ownershipOf(ds),
      seq: ds.seq,
      stime: sysvTime(ds.stime),
      rtime: sysvTime(ds.rtime),
      ctime: sysvTime(ds.ctime),
      cbytes: ds.cbytes,
      qnum: ds.qnum,
      qbytes: ds.qbytes,
      lspid: ds.lspid,
      lrpid: ds.lrpid,
    };
  }

  /** msgctl(IPC_SET): capacity, permission bits, owner. */
  set(changes: SysvMqSetOptions): void {
    const c = checkOptions(changes, 'changes', ['qbytes', 'mode', 'uid', 'gid']) as SysvMqSetOptions;
    const current = sys(() => native.mqSysvStat(this.id), this.#context);
    const { mode, uid, gid } = ownerChanges(c, current);
    const qbytes = checkInteger(c.qbytes, 'changes.qbytes', 0, Number.MAX_SAFE_INTEGER, current.qbytes);
    try {
      native.mqSysvSet(this.id, uid, gid, mode, qbytes);
    } catch (e) {
      const err = toIpcError(e, this.#context);
      const mnb = readLimit(`${KERNEL}/msgmnb`);
      if (err instanceof IpcError && err.code === 'EPERM' && qbytes > current.qbytes && typeof mnb.value === 'number' && qbytes > mnb.value) {
        throw new IpcError(err.errno, 'msgctl', { ...this.#context, limit: mnb }, `raising qbytes to ${qbytes} above it needs CAP_SYS_RESOURCE`);
      }
      throw err;
    }
  }

  /** msgctl(IPC_RMID): destroys the queue now; waiting senders and receivers get EIDRM. */
  remove(): void {
    sys(() => native.mqSysvRemove(this.id), this.#context);
    forget('sysv-mq', this.id);
  }

  /** Cancels this handle's pending waits (they reject with ERR_IPCKIT_CLOSED). The queue stays. Idempotent. */
  close(): void {
    const reason = stateError('ERR_IPCKIT_CLOSED', `queue id ${this.id}: handle closed`);
    for (const c of this.#pending) c.abort(reason);
    this.#pending.clear();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  // ---- internals ----

  /** Runs a waiter-thread wait, cancelled by the caller's signal or by close(). */
  async #wait(wait: CheckedWait, start: (ns: number) => { promise: Promise<number>; id: number }, syscall: string, size: number, maxSize = 0): Promise<number> {
    const own = new AbortController();
    this.#pending.add(own);
    try {
      return await awaitNative(start, wait, this.#context, undefined, own.signal);
    } catch (e) {
      if (e instanceof IpcError && e.code === 'ETIMEDOUT') {
        throw syscall === 'msgsnd' ? this.#full(ETIMEDOUT, 'msgsnd') : new IpcError(ETIMEDOUT, 'msgrcv', this.#context, 'no matching message arrived');
      }
      throw this.#explain(e, syscall, size, maxSize);
    } finally {
      this.#pending.delete(own);
    }
  }

  #sys<T>(fn: () => T, syscall: string, size: number, maxSize = 0): T {
    try {
      return fn();
    } catch (e) {
      throw this.#explain(e, syscall, size, maxSize);
    }
  }

  /** Names the limit behind EINVAL (message too big) and E2BIG (maxSize too small). */
  #explain(e: unknown, syscall: string, size: number, maxSize: number): unknown {
    const err = toIpcError(e, this.#context);
    if (!(err instanceof IpcError)) return err;
    if (err.code === 'EINVAL' && syscall === 'msgsnd') {
      const max = readLimit(`${KERNEL}/msgmax`);
      if (typeof max.value === 'number' && size > max.value) {
        return new IpcError(err.errno, 'msgsnd', { ...this.#context, limit: max }, `a ${size}-byte message is larger than the system's largest System V message`);
      }
    }
    if (err.code === 'E2BIG' || Math.abs(err.errno) === E2BIG) {
      return new IpcError(err.errno, 'msgrcv', { ...this.#context, limit: { name: 'options.maxSize', value: maxSize } },
        'the selected message is longer; it stays in the queue (pass a larger maxSize, or noError: true to truncate)');
    }
    return err;
  }

  /** The error for a full queue: names its capacity (msg_qbytes) and the default for new queues. */
  #full(errno: number, syscall: string): IpcError {
    let limit: IpcLimit = readLimit(`${KERNEL}/msgmnb`);
    let detail = 'the queue is full';
    try {
      const ds = native.mqSysvStat(this.id);
      limit = { name: `qbytes (msg_qbytes) of queue id ${this.id}`, value: ds.qbytes };
      detail = `the queue is full: ${ds.qnum} messages, ${ds.cbytes} bytes (new queues get ${KERNEL}/msgmnb = ${readLimit(`${KERNEL}/msgmnb`).value})`;
    } catch {
      /* removed meanwhile: the generic limit stays */
    }
    return new IpcError(errno, syscall, { ...this.#context, limit }, detail);
  }
}

/** Gets (and optionally creates) the queue for `key`; 'private' always creates a new one. */
export function get(key: SysvKey, options?: SysvMqGetOptions): SysvQueue {
  const k = checkKey(key);
  const o = checkOptions(options, 'options', ['create', 'exclusive', 'mode', 'owned']) as SysvMqGetOptions;
  const isPrivate = key === 'private';
  const create = checkBoolean(o.create, 'options.create', isPrivate);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const mode = checkMode(o.mode);
  if (exclusive && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  const { IPC_CREAT, IPC_EXCL } = native.sysvConstants;
  const ctx = isPrivate ? {} : { key: k };
  const getIt = (flags: number): number =>
    sys(() => native.mqSysvGet(k, flags === 0 ? 0 : flags | mode), ctx, (code) => (code === 'ENOSPC' ? readLimit(`${KERNEL}/msgmni`) : undefined));
  const { handle: id, created } = openOrCreate(getIt, create, exclusive, { create: IPC_CREAT, exclusive: IPC_EXCL });
  if (owned && created) ownById('sysv-mq', id);
  return new SysvQueue(id, isPrivate ? 0 : k, owned && created);
}

/** Opens the queue with identifier `id` (as `ipcs -q` and `ipcmk -Q` print it). */
export function fromId(id: number): SysvQueue {
  checkInteger(id, 'id', 0, 0x7fffffff);
  const ds = sys(() => native.mqSysvStat(id), { id });
  return new SysvQueue(id, ds.key);
}

export interface SysvMqListEntry {
  key: number;
  id: number;
  mode: number;
  /** Bytes and messages in the queue. */
  cbytes: number;
  qnum: number;
  lspid: number;
  lrpid: number;
  uid: number;
  gid: number;
  /** Creator's uid/gid. */
  cuid: number;
  cgid: number;
  /** Last msgsnd / msgrcv / change; null when it never happened. */
  stime: Date | null;
  rtime: Date | null;
  ctime: Date | null;
}

/** Lists every System V queue (/proc/sysvipc/msg), sorted by id. The kernel records no creator pid for queues. */
export function list(): SysvMqListEntry[] {
  return readSysvTable('msg', ['msqid', 'cbytes', 'qnum', 'lspid', 'lrpid', 'stime', 'rtime', 'ctime'])
    .map(({ num, time, ownership }) => ({
      ...ownership(),
      id: num('msqid'),
      cbytes: num('cbytes'),
      qnum: num('qnum'),
      lspid: num('lspid'),
      lrpid: num('lrpid'),
      stime: time('stime'),
      rtime: time('rtime'),
      ctime: time('ctime'),
    }))
    .sort((a, b) => a.id - b.id);
}

export const sysv = { get, fromId, ftok, list } as const;
