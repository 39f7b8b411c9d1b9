// POSIX message queues (mq_overview(7)): named kernel queues of whole
// messages, received highest priority first, FIFO within a priority.
//
// Waiting never blocks the event loop: the queue descriptor is pollable on
// Linux, so a send on a full queue or a receive on an empty one is retried
// when the poller (src/core/poller.ts, uv_poll) reports the descriptor ready. The
// Sync variants block the calling thread (for worker threads) in ppoll.
import { constants as fsc, fchmodSync, fstatSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { IpcError, abortError, fromHere, stateError, sys, throwIfAborted, timeoutError, toIpcError, typeError, errno, type IpcErrorContext, type IpcLimit } from '../core/errors.js';
import { nofileLimit, readLimit, rlimitMsgqueue } from '../core/limits.js';
import { native } from '../core/native.js';
import { forget, identityOf, ownByName } from '../core/owned.js';
import { openOrCreate } from '../core/posix-open.js';
import { READABLE, WRITABLE, watchFd, type FdWatcher } from '../core/poller.js';
import { checkBoolean, checkInteger, checkMode, checkOptions, checkOwned, checkPosixName, show } from '../core/validate.js';
import { checkWaitOptions } from '../core/waiter.js';

/** A received message. */
export interface MqMessage {
  data: Buffer;
  /** 0 (lowest) to 32767 (highest). */
  priority: number;
}

export interface MqOpenOptions {
  /** Create the queue if it does not exist (O_CREAT). Default false. */
  create?: boolean;
  /** With create: fail with EEXIST if it exists (O_EXCL). Default false. */
  exclusive?: boolean;
  /** Permission bits of a new queue, applied exactly (not filtered by umask). Default 0o600. */
  mode?: number | string;
  /** Capacity of a new queue in messages (mq_maxmsg). Default /proc/sys/fs/mqueue/msg_default. */
  maxMessages?: number;
  /** Largest message of a new queue in bytes (mq_msgsize). Default /proc/sys/fs/mqueue/msgsize_default. */
  messageSize?: number;
  /** Open for receiving only (O_RDONLY). Default false. */
  readOnly?: boolean;
  /** Open for sending only (O_WRONLY). Default false. */
  writeOnly?: boolean;
  /**
   * Unlink the queue when this process exits (normally, by process.exit(),
   * an uncaught exception, SIGINT, SIGTERM or SIGHUP; not kill -9). Applies
   * only if this call creates it (see `queue.owned`). Needs `create`.
   * Default false.
   */
  owned?: boolean;
}

export interface MqSendOptions {
  /** 0 (default) to 32767; higher priorities are received first. */
  priority?: number;
  /** Milliseconds to wait for room at most. Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`cause`: `signal.reason`) and nothing is sent. */
  signal?: AbortSignal;
}

export interface MqReceiveOptions {
  /** Milliseconds to wait for a message at most. Default: no limit. */
  timeout?: number;
  /** Cancels the wait; the Promise rejects with an AbortError (`cause`: `signal.reason`) and nothing is taken. */
  signal?: AbortSignal;
}

export interface MqAttributes {
  /** Capacity in messages (mq_maxmsg). */
  maxMessages: number;
  /** Largest message in bytes (mq_msgsize). */
  messageSize: number;
  /** Messages in the queue now (mq_curmsgs). */
  currentMessages: number;
  /**
   * O_NONBLOCK of this descriptor. Always true for ipckit handles: waits are
   * event-driven (poll) rather than blocking system calls.
   */
  nonBlocking: boolean;
}

/** Bytes of a message: a Buffer/TypedArray/DataView is sent as is, a string as UTF-8. */
export type MessageData = string | ArrayBufferView;

/** Validates message data; strings become UTF-8. */
export function messageBytes(data: unknown, what = 'data'): ArrayBufferView {
  if (typeof data === 'string') return Buffer.from(data, 'utf8');
  if (ArrayBuffer.isView(data)) return data;
  throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a string, Buffer, TypedArray or DataView, got ${show(data)}`);
}

const MQ_DIR = '/proc/sys/fs/mqueue';
const PRIO_MAX = native.mqConstants.MQ_PRIO_MAX - 1;
/** Kernel ceilings for processes with CAP_SYS_RESOURCE (HARD_MSGMAX, HARD_MSGSIZEMAX in ipc/mqueue.c). */
const HARD_MSGMAX = 65536;
const HARD_MSGSIZEMAX = 16 * 1024 * 1024;
/** How many messages one wake-up moves at most before yielding to the loop. */
const BATCH = 256;

/** MqSendOptions; sendSync() knows `signal` too, to refuse it as an asynchronous-only option. */
const SEND_OPTIONS = ['priority', 'timeout', 'signal'] as const;
const OPEN_OPTIONS = ['create', 'exclusive', 'mode', 'maxMessages', 'messageSize', 'readOnly', 'writeOnly', 'owned'] as const;

function checkPriority(value: unknown): number {
  return checkInteger(value, 'options.priority', 0, PRIO_MAX, 0);
}

interface Pending {
  settle(): boolean; // true when done (resolved or rejected), false when it must keep waiting
  fail(e: unknown): void;
}

/** An open POSIX message queue. `close()` releases the descriptor; `unlink()` removes the name. */
export class PosixQueue implements Disposable, AsyncIterable<MqMessage> {
  readonly name: string;
  /** Capacity in messages, fixed when the queue was created. */
  readonly maxMessages: number;
  /** Largest message in bytes, fixed when the queue was created. */
  readonly messageSize: number;
  readonly canSend: boolean;
  readonly canReceive: boolean;
  /** This call created the queue with `owned: true`: it is unlinked when this process exits. */
  readonly owned: boolean;
  #fd: number;
  #watch: FdWatcher | null = null;
  #watching = 0;
  readonly #receivers: Pending[] = [];
  readonly #senders: Pending[] = [];
  #notify: { socket: number; watch: FdWatcher; callbacks: Set<() => void> } | null = null;

  /** @internal */
  constructor(token: symbol, name: string, fd: number, access: number, owned = false) {
    if (token !== TOKEN) throw new TypeError('use mq.open()');
    this.name = name;
    this.owned = owned;
    this.#fd = fd;
    const attr = sys(() => native.mqGetattr(fd), this.#context);
    this.maxMessages = attr.maxmsg;
    this.messageSize = attr.msgsize;
    this.canSend = access !== fsc.O_RDONLY;
    this.canReceive = access !== fsc.O_WRONLY;
  }

  get #context(): IpcErrorContext {
    return { path: this.name };
  }

  /** The queue descriptor (close-on-exec, non-blocking). */
  get fd(): number {
    this.#assertOpen();
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** mq_getattr. */
  attributes(): MqAttributes {
    this.#assertOpen();
    const a = sys(() => native.mqGetattr(this.#fd), this.#context);
    return {
      maxMessages: a.maxmsg,
      messageSize: a.msgsize,
      currentMessages: a.curmsgs,
      nonBlocking: (a.flags & native.mqConstants.O_NONBLOCK) !== 0,
    };
  }

  /** Sends now if there is room: true if sent, false if the queue is full. */
  trySend(data: MessageData, options?: { priority?: number }): boolean {
    const bytes = messageBytes(data);
    const priority = checkPriority((checkOptions(options, 'options', ['priority']) as { priority?: number }).priority);
    this.#assertCan('send');
    // Keep this handle's FIFO order: queued async sends go first.
    if (this.#senders.length > 0) return false;
    return this.#trySend(bytes, priority);
  }

  /**
   * Sends as many of `messages` as fit now, in order, all with the same
   * priority; returns how many were sent. One native call for the batch.
   */
  trySendMany(messages: readonly MessageData[], options?: { priority?: number }): number {
    if (!Array.isArray(messages)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `messages must be an array, got ${show(messages)}`);
    const list = messages.map((m, i) => messageBytes(m, `messages[${i}]`));
    const priority = checkPriority((checkOptions(options, 'options', ['priority']) as { priority?: number }).priority);
    this.#assertCan('send');
    if (this.#senders.length > 0) return 0;
    return this.#sys(() => native.mqSendMany(this.#fd, list, priority, 0), 'mq_send', list);
  }

  /** Takes the highest-priority message if there is one, else null. */
  tryReceive(): MqMessage | null {
    this.#assertCan('receive');
    if (this.#receivers.length > 0) return null;
    return this.#sys(() => native.mqTryReceive(this.#fd, this.messageSize), 'mq_receive');
  }

  /** Takes up to `max` messages that are there now (highest priority first). */
  tryReceiveMany(max = BATCH): MqMessage[] {
    const n = checkInteger(max, 'max', 1, 0xffffffff);
    this.#assertCan('receive');
    if (this.#receivers.length > 0) return [];
    return this.#sys(() => native.mqReceiveMany(this.#fd, this.messageSize, n), 'mq_receive');
  }

  /**
   * Sends `data`, waiting for room without blocking the event loop. Rejects
   * with ETIMEDOUT after `timeout` ms (nothing sent), or with an AbortError
   * when the signal aborts. Sends from one handle leave in call order.
   */
  send(data: MessageData, options?: MqSendOptions): Promise<void> {
    try {
      const bytes = messageBytes(data);
      const o = checkOptions(options, 'options', SEND_OPTIONS) as MqSendOptions;
      const priority = checkPriority(o.priority);
      const wait = checkWaitOptions({ timeout: o.timeout, signal: o.signal });
      this.#assertCan('send');
      throwIfAborted(wait.signal);
      if (this.#senders.length === 0 && this.#trySend(bytes, priority)) return Promise.resolve();
      return this.#enqueue(this.#senders, wait, 'mq_timedsend', (resolve) => {
        if (!this.#trySend(bytes, priority)) return false;
        resolve(undefined);
        return true;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /**
   * Receives the highest-priority message, waiting for one without blocking
   * the event loop. Rejects with ETIMEDOUT after `timeout` ms, or with an
   * AbortError when the signal aborts; a rejected receive never takes a message.
   */
  receive(options?: MqReceiveOptions): Promise<MqMessage> {
    try {
      const wait = checkWaitOptions(options);
      this.#assertCan('receive');
      throwIfAborted(wait.signal);
      if (this.#receivers.length === 0) {
        const m = this.#sys(() => native.mqTryReceive(this.#fd, this.messageSize), 'mq_receive');
        if (m) return Promise.resolve(m);
      }
      return this.#enqueue<MqMessage>(this.#receivers, wait, 'mq_timedreceive', (resolve) => {
        const m = this.#sys(() => native.mqTryReceive(this.#fd, this.messageSize), 'mq_receive');
        if (!m) return false;
        resolve(m);
        return true;
      });
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** Sends, blocking this thread while the queue is full (for worker threads). */
  sendSync(data: MessageData, options?: { priority?: number; timeout?: number }): void {
    const bytes = messageBytes(data);
    const o = checkOptions(options, 'options', SEND_OPTIONS) as { priority?: number; timeout?: number; signal?: AbortSignal };
    const priority = checkPriority(o.priority);
    const { timeoutNs } = checkWaitOptions({ timeout: o.timeout, signal: o.signal }, false);
    this.#assertCan('send');
    this.#sys(() => native.mqSendSync(this.#fd, bytes, priority, timeoutNs), 'mq_timedsend', [bytes]);
  }

  /** Receives, blocking this thread while the queue is empty (for worker threads). */
  receiveSync(options?: { timeout?: number }): MqMessage {
    const { timeoutNs } = checkWaitOptions(options, false);
    this.#assertCan('receive');
    return this.#sys(() => native.mqReceiveSync(this.#fd, this.messageSize, timeoutNs), 'mq_timedreceive');
  }

  /**
   * Receives messages until the handle is closed (or the loop is left):
   * `for await (const { data, priority } of queue)`. Breaking out takes no
   * message beyond the last one yielded.
   */
  async *[Symbol.asyncIterator](): AsyncIterator<MqMessage> {
    for (;;) {
      if (this.closed) return;
      let m: MqMessage;
      try {
        m = await this.receive();
      } catch (e) {
        if (this.closed && (e as { code?: string }).code === 'ERR_IPCKIT_CLOSED') return;
        throw e;
      }
      yield m;
    }
  }

  /**
   * Calls `callback` on the event loop when a message arrives in the EMPTY
   * queue (mq_notify). The kernel allows one registered process per queue:
   * another process's registration makes this throw EBUSY. The kernel also
   * skips the notification while some process is blocked in mq_receive, and
   * a registration only fires on an empty -> non-empty transition, so drain
   * the queue in the callback. ipckit re-registers before each call.
   * Returns a function that removes `callback` (the registration goes with
   * the last one, or with close()). While registered the process stays alive.
   */
  onNotify(callback: () => void): () => void {
    if (typeof callback !== 'function') throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `callback must be a function, got ${show(callback)}`);
    this.#assertCan('receive');
    if (!this.#notify) {
      const socket = sys(() => native.mqNotifySocket(), this.#context);
      try {
        this.#register(socket);
      } catch (e) {
        native.fdClose(socket);
        throw e;
      }
      const watch = watchFd(socket, READABLE, (_events, error) => this.#onNotifyReady(error));
      this.#notify = { socket, watch, callbacks: new Set() };
    }
    const entry = () => callback();
    this.#notify.callbacks.add(entry);
    return () => {
      const n = this.#notify;
      if (!n || !n.callbacks.delete(entry) || n.callbacks.size > 0) return;
      this.#dropNotify(true);
    };
  }

  /** Closes the descriptor (mq_close). Pending waits reject with ERR_IPCKIT_CLOSED. The queue stays. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.#dropNotify(false);
    this.#watch?.stop();
    this.#watch = null;
    const fd = this.#fd;
    this.#fd = -1;
    const err = stateError('ERR_IPCKIT_CLOSED', `queue '${this.name}' was closed`);
    for (const p of [...this.#receivers.splice(0), ...this.#senders.splice(0)]) p.fail(err);
    sys(() => native.mqClose(fd), this.#context);
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /** Removes the queue's name (mq_unlink); open handles keep working. */
  unlink(): void {
    unlink(this.name);
  }

  // ---- internals ----

  #assertOpen(): void {
    if (this.#fd < 0) throw stateError('ERR_IPCKIT_CLOSED', `queue '${this.name}' is closed`);
  }

  #assertCan(what: 'send' | 'receive'): void {
    this.#assertOpen();
    if (what === 'send' && !this.canSend) {
      throw stateError('ERR_IPCKIT_READ_ONLY', `cannot send: queue '${this.name}' was opened readOnly (O_RDONLY)`);
    }
    if (what === 'receive' && !this.canReceive) {
      throw stateError('ERR_IPCKIT_WRITE_ONLY', `cannot receive: queue '${this.name}' was opened writeOnly (O_WRONLY)`);
    }
  }

  #trySend(bytes: ArrayBufferView, priority: number): boolean {
    return this.#sys(() => native.mqTrySend(this.#fd, bytes, priority), 'mq_send', [bytes]);
  }

  /** Runs a native call and explains EMSGSIZE with the queue's message size. */
  #sys<T>(fn: () => T, syscall: string, sent?: readonly ArrayBufferView[]): T {
    try {
      return fn();
    } catch (e) {
      const err = toIpcError(e, this.#context);
      if (err instanceof IpcError && err.code === 'EMSGSIZE' && sent) {
        const biggest = Math.max(...sent.map((b) => b.byteLength));
        throw new IpcError(errno.EMSGSIZE, syscall, { ...this.#context, limit: { name: `messageSize (mq_msgsize) of '${this.name}'`, value: this.messageSize } },
          `a ${biggest}-byte message is larger than the queue's message size; the system maximum for new queues is ${MQ_DIR}/msgsize_max = ${readLimit(`${MQ_DIR}/msgsize_max`).value}`);
      }
      throw err;
    }
  }

  /**
   * Queues a waiting operation, served in order when the descriptor is ready.
   * Its timeout and abort errors are made in callbacks: fromHere() gives
   * them the caller's stack.
   */
  #enqueue<T>(list: Pending[], wait: ReturnType<typeof checkWaitOptions>, syscall: string, attempt: (resolve: (v: T) => void) => boolean): Promise<T> {
    return fromHere(new Promise<T>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const { signal } = wait;
      const done = () => {
        const i = list.indexOf(pending);
        if (i >= 0) list.splice(i, 1);
        if (timer) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        this.#updateWatch();
      };
      const onAbort = () => {
        done();
        reject(abortError(signal!));
      };
      const pending: Pending = {
        settle: () => {
          let ok: boolean;
          try {
            ok = attempt((v) => {
              done();
              resolve(v);
            });
          } catch (e) {
            done();
            reject(e);
            return true;
          }
          return ok;
        },
        fail: (e) => {
          done();
          reject(e);
        },
      };
      list.push(pending);
      if (wait.timeoutNs >= 0) {
        timer = setTimeout(() => {
          done();
          reject(this.#timedOut(syscall));
        }, wait.timeoutNs / 1e6);
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#updateWatch();
    }));
  }

  #timedOut(syscall: string): IpcError {
    const limit: IpcLimit | undefined =
      syscall === 'mq_timedsend' ? { name: `maxMessages (mq_maxmsg) of '${this.name}'`, value: this.maxMessages } : undefined;
    return timeoutError(syscall, limit ? { ...this.#context, limit } : this.#context,
      syscall === 'mq_timedsend' ? 'the queue stayed full' : 'no message arrived');
  }

  /** Watches for exactly the readiness the pending operations need. */
  #updateWatch(): void {
    if (this.#fd < 0) return;
    const events = (this.#receivers.length ? READABLE : 0) | (this.#senders.length ? WRITABLE : 0);
    if (events === this.#watching) return;
    this.#watching = events;
    if (this.#watch) {
      // Pausing (0) keeps the libuv handle for the next wait: making one per
      // message would cost more than the message. A paused handle does not
      // keep the process alive.
      this.#watch.update(events);
    } else if (events !== 0) {
      this.#watch = watchFd(this.#fd, events, (ready, error) => this.#onReady(ready, error));
    }
  }

  #onReady(ready: number, error?: IpcError): void {
    if (error) {
      this.#watch = null;
      this.#watching = 0;
      for (const p of [...this.#receivers, ...this.#senders]) p.fail(error);
      return;
    }
    // Serve in order until the kernel says "not now"; the watch is level
    // triggered, so stopping early just means being called again.
    if (ready & READABLE) this.#serve(this.#receivers);
    if (ready & WRITABLE) this.#serve(this.#senders);
  }

  #serve(list: Pending[]): void {
    for (let i = 0; i < BATCH && list.length > 0; i++) {
      if (!list[0]!.settle()) return;
    }
  }

  #register(socket: number): void {
    try {
      native.mqNotify(this.#fd, socket);
    } catch (e) {
      const err = toIpcError(e, this.#context);
      if (err instanceof IpcError && err.code === 'EBUSY') {
        throw new IpcError(err.errno, 'mq_notify', this.#context, 'another process is registered for notification on this queue (the kernel allows one)');
      }
      throw err;
    }
  }

  #onNotifyReady(error?: IpcError): void {
    const n = this.#notify;
    if (!n) return;
    if (error) {
      this.#dropNotify(false);
      throw error;
    }
    const codes = sys(() => native.mqNotifyRead(n.socket), this.#context);
    const woken = codes.includes(native.mqConstants.NOTIFY_WOKENUP);
    // REMOVED while we still listen: the kernel dropped the registration
    // because this process closed *another* descriptor of the same queue
    // (mq_close by the owner removes it). Register again, and if messages
    // came meanwhile, call the callbacks since no transition will.
    const removed = codes.includes(native.mqConstants.NOTIFY_REMOVED);
    if (!woken && !removed) return;
    // Re-register first (mq_notify is one-shot), then tell the callbacks.
    let failure: unknown = null;
    try {
      this.#register(n.socket);
    } catch (e) {
      failure = e;
    }
    const call = woken || (!failure && this.#fd >= 0 && native.mqGetattr(this.#fd).curmsgs > 0);
    if (call) for (const cb of [...n.callbacks]) cb();
    if (failure) {
      this.#dropNotify(false);
      throw failure;
    }
  }

  #dropNotify(unregister: boolean): void {
    const n = this.#notify;
    if (!n) return;
    this.#notify = null;
    n.watch.stop();
    if (unregister && this.#fd >= 0) {
      try {
        native.mqNotify(this.#fd, -1);
      } catch {
        // Not registered any more (someone else's turn): nothing to remove.
      }
    }
    native.fdClose(n.socket);
  }
}

const TOKEN = Symbol('PosixQueue');

/**
 * The bytes mq_open charges a new queue against its creator's RLIMIT_MSGQUEUE
 * (the kernel's mqueue_get_inode): each message slot costs its message size
 * plus one struct msg_msg (48 bytes on 64-bit), and each slot up to
 * MQ_PRIO_MAX (32768) one priority-tree node (struct posix_msg_tree_node,
 * 48 bytes), as the worst case of pinned memory. The charge lasts until the
 * queue is both unlinked and closed everywhere.
 */
export function queueBytes(maxMessages: number, messageSize: number): number {
  return maxMessages * (48 + messageSize) + Math.min(maxMessages, 32768) * 48;
}

function openFiles(): number {
  try {
    return readdirSync('/proc/self/fd').length;
  } catch {
    return 0;
  }
}

/** Which limit explains a failed mq_open, and in what words. */
function explainOpen(err: IpcError, name: string, create: boolean, maxMessages: number, messageSize: number): IpcError {
  const ctx = { path: name };
  const remake = (limit: IpcLimit, detail: string) => new IpcError(err.errno, 'mq_open', { ...ctx, limit }, detail);
  if (err.code === 'EINVAL' && create && maxMessages > 0) {
    if (maxMessages > HARD_MSGMAX) return remake({ name: 'HARD_MSGMAX (kernel constant)', value: HARD_MSGMAX }, `maxMessages ${maxMessages} is above the kernel's ceiling`);
    if (messageSize > HARD_MSGSIZEMAX) return remake({ name: 'HARD_MSGSIZEMAX (kernel constant)', value: HARD_MSGSIZEMAX }, `messageSize ${messageSize} is above the kernel's ceiling`);
    const msgMax = readLimit(`${MQ_DIR}/msg_max`);
    if (typeof msgMax.value === 'number' && maxMessages > msgMax.value) {
      return remake(msgMax, `maxMessages ${maxMessages} is above it (processes with CAP_SYS_RESOURCE may go up to ${HARD_MSGMAX})`);
    }
    const sizeMax = readLimit(`${MQ_DIR}/msgsize_max`);
    if (typeof sizeMax.value === 'number' && messageSize > sizeMax.value) {
      return remake(sizeMax, `messageSize ${messageSize} is above it (processes with CAP_SYS_RESOURCE may go up to ${HARD_MSGSIZEMAX})`);
    }
  }
  if (err.code === 'EMFILE') {
    if (openFiles() >= nofileLimit()) return remake({ name: 'RLIMIT_NOFILE (ulimit -n)', value: nofileLimit() }, 'too many open descriptors');
    const need = maxMessages > 0 ? ` this queue needs ${queueBytes(maxMessages, messageSize)} bytes;` : '';
    return remake(rlimitMsgqueue(), `the bytes of all queues created by this user would exceed it;${need} RLIMIT_MSGQUEUE counts every queue the user created until it is unlinked and closed`);
  }
  if (err.code === 'ENOSPC') return remake(readLimit(`${MQ_DIR}/queues_max`), 'the system-wide number of queues is reached (processes with CAP_SYS_RESOURCE are exempt)');
  if (err.code === 'ENFILE') return remake(readLimit('/proc/sys/fs/file-max'), 'the system-wide number of open files is reached');
  return err;
}

function readDefault(file: string, fallback: number): number {
  const v = readLimit(`${MQ_DIR}/${file}`).value;
  return typeof v === 'number' ? v : fallback;
}

/** Opens (and optionally creates) the POSIX message queue `name`. */
export function open(name: string, options?: MqOpenOptions): PosixQueue {
  checkPosixName(name);
  const o = checkOptions(options, 'options', OPEN_OPTIONS) as MqOpenOptions;
  const create = checkBoolean(o.create, 'options.create', false);
  const owned = checkOwned(o.owned, create);
  const exclusive = checkBoolean(o.exclusive, 'options.exclusive', false);
  const readOnly = checkBoolean(o.readOnly, 'options.readOnly', false);
  const writeOnly = checkBoolean(o.writeOnly, 'options.writeOnly', false);
  const mode = checkMode(o.mode);
  let maxMessages = checkInteger(o.maxMessages, 'options.maxMessages', 1, HARD_MSGMAX, 0);
  let messageSize = checkInteger(o.messageSize, 'options.messageSize', 1, HARD_MSGSIZEMAX, 0);
  if (exclusive && !create) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.exclusive needs options.create');
  if (readOnly && writeOnly) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.readOnly and options.writeOnly exclude each other');
  if (!create && (o.maxMessages !== undefined || o.messageSize !== undefined)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.maxMessages and options.messageSize apply when creating (options.create)');
  }
  // mq_open takes both attributes or neither: fill in the system default for the missing one.
  if (maxMessages > 0 || messageSize > 0) {
    if (maxMessages === 0) maxMessages = readDefault('msg_default', 10);
    if (messageSize === 0) messageSize = readDefault('msgsize_default', 8192);
  }
  const access = readOnly ? fsc.O_RDONLY : writeOnly ? fsc.O_WRONLY : fsc.O_RDWR;
  const base = access | native.mqConstants.O_NONBLOCK;
  const openIt = (flags: number): number => {
    try {
      return native.mqOpen(name, base | flags, mode, maxMessages, messageSize);
    } catch (e) {
      const err = toIpcError(e, { path: name });
      throw err instanceof IpcError ? explainOpen(err, name, (flags & fsc.O_CREAT) !== 0, maxMessages, messageSize) : err;
    }
  };

  const { handle: fd, created } = openOrCreate(openIt, create, exclusive);
  try {
    if (created) sys(() => fchmodSync(fd, mode), { path: name });
    const queue = new PosixQueue(TOKEN, name, fd, access, owned && created);
    if (queue.owned) {
      // The name can be checked only where the mqueue filesystem is mounted.
      const dir = mountPoint();
      ownByName('posix-mq', name, dir ? identityOf(`${dir}${name}`, fstatSync(fd)) : null);
    }
    return queue;
  } catch (e) {
    native.mqClose(fd);
    if (created) native.mqUnlink(name);
    throw e;
  }
}

/**
 * Wraps a queue descriptor received from another process (SCM_RIGHTS, or an
 * inherited fd) as a PosixQueue that owns it from then on. fstatfs must say
 * the descriptor is on the mqueue filesystem (anything else is refused with
 * ERR_IPCKIT_INVALID_ARG_VALUE before any queue call); its access mode
 * decides canSend/canReceive. Operations never block even if the sender
 * clears O_NONBLOCK on the shared file description (they pass an expired
 * deadline to mq_timedsend/mq_timedreceive). `name` is only a label.
 */
export function fromFd(fd: number, name = `fd:${fd}`): PosixQueue {
  checkInteger(fd, 'fd', 0, 0x7fffffff);
  const info = sys(() => native.fdInspect(fd), { path: name });
  if (info.fsType !== native.shmConstants.MQUEUE_MAGIC) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `fd ${fd} is not a POSIX message queue descriptor`);
  }
  return new PosixQueue(TOKEN, name, fd, info.access);
}

/** Removes the queue `name` (mq_unlink); it is destroyed once the last descriptor closes. */
export function unlink(name: string): void {
  checkPosixName(name);
  sys(() => native.mqUnlink(name), { path: name });
  forget('posix-mq', name);
}

/** Where the mqueue filesystem is mounted, if it is (it lists queues as files). */
export function mountPoint(): string | null {
  try {
    for (const line of readFileSync('/proc/self/mounts', 'utf8').split('\n')) {
      const f = line.split(' ');
      if (f[2] === 'mqueue') return f[1] ?? null;
    }
  } catch {
    /* no /proc */
  }
  return null;
}

export interface MqListEntry {
  name: string;
  /** Bytes of message data in the queue (QSIZE). */
  bytes: number;
  /** Messages in the queue, from mq_getattr when the queue could be opened, else null. */
  messages: number | null;
  mode: number;
  uid: number;
  gid: number;
  /** Pid registered with mq_notify, 0 if none (NOTIFY_PID). */
  notifyPid: number;
}

/**
 * Lists POSIX queues. Needs the mqueue filesystem mounted (see mountPoint());
 * returns null when it is not: `mount -t mqueue none /dev/mqueue` (as root).
 */
export function list(): MqListEntry[] | null {
  const dir = mountPoint();
  if (!dir) return null;
  const out: MqListEntry[] = [];
  for (const entry of readdirSync(dir)) {
    const path = `${dir}/${entry}`;
    try {
      const info = readFileSync(path, 'utf8');
      const st = statSync(path);
      const field = (k: string) => Number(new RegExp(`${k}:(\\d+)`).exec(info)?.[1] ?? 0);
      let messages: number | null = null;
      try {
        const fd = native.mqOpen(`/${entry}`, fsc.O_RDONLY | native.mqConstants.O_NONBLOCK, 0, 0, 0);
        try {
          messages = native.mqGetattr(fd).curmsgs;
        } finally {
          native.mqClose(fd);
        }
      } catch {
        /* no permission to open: the byte count still tells something */
      }
      out.push({ name: `/${entry}`, bytes: field('QSIZE'), messages, mode: st.mode & 0o777, uid: st.uid, gid: st.gid, notifyPid: field('NOTIFY_PID') });
    } catch {
      /* removed while listing */
    }
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}
