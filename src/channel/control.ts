// The control socket of a local channel (shm:, mq:, sysvmq:): the connected
// Unix stream socket both sides meet on at the rendezvous. It carries
//   - the handshake: one message each way, a u32-LE length and UTF-8 JSON,
//     with descriptors attached by SCM_RIGHTS (never paths to reopen: a
//     descriptor grants exactly what its sender could do with it);
//   - then only doorbell bytes (shm:), sent with MSG_DONTWAIT so a ring never
//     blocks, and drained at most 64 KiB per wake-up;
//   - and, by its end of file, the news that the peer closed or died.
// The socket is driven by the uv_poll watcher and non-blocking system calls
// on this side's own descriptor (made by socket() or accept()), whose flags
// no peer can change.
import { Buffer } from 'node:buffer';
import { IpcError, stateError, sys, throwIfAborted, timeoutError, errno } from '../core/errors.js';
import { readLimit } from '../core/limits.js';
import { native } from '../core/native.js';
import { READABLE, watchFd, type FdWatcher } from '../core/poller.js';
import type { PeerCredentials } from './access.js';

/** How long a peer has to send its half of a handshake. */
export const HANDSHAKE_MS = 10_000;
/** Largest handshake message (JSON bytes). */
const MESSAGE_MAX = 4096;
const BACKLOG_RETRY_MS = [1, 2, 5, 10, 20, 50];
const { ECONNREFUSED, ECONNRESET, EAGAIN } = errno;
/** How long a refused peer has to read its answer and hang up before the socket is closed under it. */
const REFUSAL_LINGER_MS = 2000;

export interface ControlMessage {
  value: Record<string, unknown>;
  /** Descriptors that came with it; the caller owns (and must close) them. */
  fds: number[];
}

function closeQuietly(fd: number): void {
  try {
    native.fdClose(fd);
  } catch {}
}

export function closeAll(fds: readonly number[]): void {
  for (const fd of fds) if (fd >= 0) closeQuietly(fd);
}

function handshakeError(what: string, why: string): Error {
  return stateError('ERR_IPCKIT_HANDSHAKE', `${what}: ${why}`);
}

export class ControlSocket {
  #fd: number;
  #watch: FdWatcher | null = null;
  #refed = true;

  constructor(fd: number) {
    this.#fd = fd;
  }

  /**
   * Connects to the abstract socket `name` (without its leading NUL),
   * retrying while the listener's backlog is full (a non-blocking Unix
   * connect then fails with EAGAIN and never completes by itself).
   */
  static async connect(name: string, url: string, timeoutMs: number, signal?: AbortSignal): Promise<ControlSocket> {
    const address = Buffer.from(`\0${name}`);
    const fd = sys(() => native.unixSocket(native.pipeConstants.SOCK_STREAM), { path: url });
    try {
      const started = Date.now();
      for (let attempt = 0; ; attempt++) {
        throwIfAborted(signal);
        const r = sys(() => native.unixConnect(fd, address), { path: url });
        if (r === 0) return new ControlSocket(fd);
        if (r !== EAGAIN) throw new IpcError(r, 'connect', { path: url });
        if (Date.now() - started >= timeoutMs) {
          throw timeoutError('connect', { path: url, limit: readLimit('/proc/sys/net/core/somaxconn') }, `the listener's backlog stayed full for ${timeoutMs} ms`);
        }
        await new Promise((resolve) => setTimeout(resolve, BACKLOG_RETRY_MS[Math.min(attempt, BACKLOG_RETRY_MS.length - 1)]));
      }
    } catch (e) {
      closeQuietly(fd);
      throw e;
    }
  }

  static refused(url: string): IpcError {
    return new IpcError(ECONNREFUSED, 'connect', { path: url });
  }

  get fd(): number {
    return this.#fd;
  }

  get closed(): boolean {
    return this.#fd < 0;
  }

  /** SO_PEERCRED: who is at the other end (as the kernel saw it at connect/listen time). */
  credentials(): PeerCredentials {
    return sys(() => native.unixPeerCred(this.#fd), { path: `fd ${this.#fd}` });
  }

  /**
   * Sends one handshake message with `fds` attached. A fresh connection's
   * socket buffer (over 200 KiB) takes a message this small at once, so a
   * partial send means something is badly wrong.
   */
  sendMessage(value: object, fds: readonly number[] = [], what = 'handshake'): void {
    const json = Buffer.from(JSON.stringify(value), 'utf8');
    if (json.length > MESSAGE_MAX) throw handshakeError(what, `handshake message of ${json.length} bytes is too long`);
    const data = Buffer.allocUnsafe(4 + json.length);
    data.writeUInt32LE(json.length, 0);
    json.copy(data, 4);
    const n = sys(() => native.unixSend(this.#fd, data, fds.length > 0 ? [...fds] : null, null), { path: what });
    if (n !== data.length) throw handshakeError(what, 'the control socket did not take the handshake message');
  }

  /**
   * Reads one handshake message: at most MESSAGE_MAX bytes of JSON object and
   * `maxFds` descriptors, within `timeoutMs`. Anything else (a longer or
   * malformed message, more descriptors, end of file) rejects with
   * ERR_IPCKIT_HANDSHAKE, the time running out with IpcError ETIMEDOUT; every
   * descriptor received so far is then closed.
   */
  readMessage(what: string, timeoutMs: number, maxFds: number): Promise<ControlMessage> {
    return new Promise<ControlMessage>((resolve, reject) => {
      const scratch = Buffer.allocUnsafe(MESSAGE_MAX + 4);
      let have = 0;
      const fds: number[] = [];
      let watch: FdWatcher | null = null;
      let settled = false;
      const finish = (error: Error | null, value?: Record<string, unknown>) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        watch?.stop();
        if (error) {
          closeAll(fds);
          reject(error);
        } else resolve({ value: value!, fds });
      };
      const onReady = (_events: number, error?: IpcError) => {
        // A poll error (the peer hung up with data of ours unread) can come
        // with its answer still buffered: read that first.
        for (;;) {
          let got: ReturnType<typeof native.unixRecv>;
          try {
            got = native.unixRecv(this.#fd, scratch.subarray(have));
          } catch (e) {
            const errno = (e as { errno: number }).errno;
            if (errno === ECONNRESET) return finish(handshakeError(what, 'the peer hung up during the handshake'));
            return finish(new IpcError(errno, 'recvmsg', { path: what }));
          }
          if (got === null) return error ? finish(error) : undefined;
          fds.push(...got.fds);
          if (got.fdsTruncated || fds.length > maxFds) return finish(handshakeError(what, `the peer sent more than ${maxFds} descriptor(s)`));
          if (got.length === 0 && got.fds.length === 0) return finish(handshakeError(what, 'the peer hung up during the handshake'));
          have += got.length;
          if (have < 4) continue;
          const len = scratch.readUInt32LE(0);
          if (len > MESSAGE_MAX) return finish(handshakeError(what, `handshake message of ${len} bytes is too long`));
          if (have < 4 + len) {
            if (have === scratch.length) return finish(handshakeError(what, 'handshake message too long'));
            continue;
          }
          // Bytes after the message can only be doorbell rings: the receiver looks at its ring once started anyway.
          let value: unknown;
          try {
            value = JSON.parse(scratch.toString('utf8', 4, 4 + len));
          } catch {
            return finish(handshakeError(what, 'malformed handshake message'));
          }
          if (typeof value !== 'object' || value === null || Array.isArray(value)) return finish(handshakeError(what, 'malformed handshake message'));
          return finish(null, value as Record<string, unknown>);
        }
      };
      const timer = setTimeout(() => finish(timeoutError('recvmsg', { path: what }, `no handshake within ${timeoutMs} ms`)), timeoutMs);
      try {
        watch = watchFd(this.#fd, READABLE, onReady);
      } catch (e) {
        finish(e as Error);
      }
    });
  }

  /**
   * Sends a refusal and closes without losing it: closing a socket with the
   * peer's hello unread would reset the connection, and the peer could read
   * ECONNRESET before our answer. So: answer, end our side, read and drop
   * whatever the peer sent until it hangs up (or REFUSAL_LINGER_MS pass).
   */
  refuse(answer: object): void {
    try {
      this.sendMessage(answer);
    } catch {
      return this.close();
    }
    this.shutdown();
    const timer = setTimeout(() => this.close(), REFUSAL_LINGER_MS).unref();
    this.#watch = watchFd(this.#fd, READABLE, (_events, error) => {
      if (error || this.drain() < 0) {
        clearTimeout(timer);
        this.close();
      }
    }, { ref: false });
  }

  /** After the handshake: `onReadable` runs whenever a ring or end of file is waiting; it must call drain(). */
  watch(onReadable: () => void): void {
    this.#watch = watchFd(this.#fd, READABLE, (_events, error) => {
      if (error) this.close();
      onReadable();
    }, { ref: this.#refed });
  }

  /** Wakes the peer (one byte, never blocks). False if the bell could not be rung (its buffer is full, or the peer is gone). */
  ring(): boolean {
    if (this.#fd < 0) return false;
    try {
      return native.doorbellRing(this.#fd);
    } catch {
      // EPIPE/ECONNRESET: the peer is gone; end of file reports that.
      return false;
    }
  }

  /** Bytes of rings drained, or -1 at end of file (or once closed). */
  drain(): number {
    if (this.#fd < 0) return -1;
    try {
      return native.doorbellDrain(this.#fd);
    } catch {
      return -1;
    }
  }

  /** Blocks the thread until a ring or end of file (true) or the timeout (false; timeoutNs < 0: none). */
  waitSync(timeoutNs: number, what: string): boolean {
    return sys(() => native.doorbellWait(this.#fd, timeoutNs), { path: what }) === 1;
  }

  /** No more data from this side: the peer reads end of file (clean close, first half). */
  shutdown(): void {
    if (this.#fd < 0) return;
    try {
      native.unixShutdown(this.#fd, native.unixConstants.SHUT_WR);
    } catch {}
  }

  ref(): void {
    this.#refed = true;
    this.#watch?.ref();
  }

  unref(): void {
    this.#refed = false;
    this.#watch?.unref();
  }

  /** Stops watching; the descriptor stays open (the peer does not see end of file yet). */
  unwatch(): void {
    this.#watch?.stop();
    this.#watch = null;
  }

  /** Closes the descriptor. Idempotent. */
  close(): void {
    if (this.#fd < 0) return;
    this.unwatch();
    closeQuietly(this.#fd);
    this.#fd = -1;
  }
}
