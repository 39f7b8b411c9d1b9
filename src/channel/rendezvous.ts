// Where the local channel transports (shm:, mq:, sysvmq:) meet: the listener
// owns the abstract Unix socket "\0ipckit-<transport>/NAME" (no file, gone
// with the process, so a restarted peer can listen again at once). Anyone on
// the machine may connect to an abstract socket, so the kernel's word on who
// connected (SO_PEERCRED) decides: peers the listener's allowUids/allowGids
// do not admit are answered EACCES and closed before anything they send is
// read. The connector checks the listener's credentials the same way.
//
// Then one hello each way over the control socket (hello.ts), carrying the
// transport's descriptors; the listener's hello is its answer. A listener
// serves any number of handshakes at once, each bounded in time
// (HANDSHAKE_MS) and size, so slow or silent peers cost one descriptor each
// for a while and never hold up the others.
import { Buffer } from 'node:buffer';
import { IpcError, sys, errno } from '../core/errors.js';
import { native } from '../core/native.js';
import { READABLE, watchFd, type FdWatcher } from '../core/poller.js';
import { Access, type PeerCredentials } from './access.js';
import { ControlSocket, HANDSHAKE_MS, closeAll } from './control.js';
import { Refusal, checkHello, checkReply, type Hello } from './hello.js';

/** Accepts per wake-up before the event loop gets a turn. */
const ACCEPT_BATCH = 64;
/** Handshakes in progress at most; past it the oldest is dropped (a good peer finishes in microseconds). */
const PENDING_MAX = 1024;

export interface LocalListenerEvents {
  /** A peer's credentials were refused (EACCES sent back). */
  refused(credentials: PeerCredentials): void;
  /** A handshake failed (the listener keeps going). */
  error(e: Error): void;
}

/**
 * The transport's half of a listener's handshake: given the control socket,
 * the checked hello, the descriptors that came with it (owned by the callee
 * from then on) and the peer's credentials, returns the answer to send and
 * what to do once it is sent; throws a Refusal to turn the peer away.
 */
export type AcceptHandshake = (
  ctrl: ControlSocket,
  hello: Hello,
  fds: number[],
  peer: PeerCredentials,
) => { reply: Record<string, unknown>; fds?: number[]; done(): void; failed(): void };

export class LocalListener {
  readonly url: string;
  #fd: number;
  #watch: FdWatcher | null;
  readonly #access: Access;
  readonly #transport: string;
  readonly #codec: string;
  readonly #maxFds: number;
  readonly #handshake: AcceptHandshake;
  readonly #events: LocalListenerEvents;
  readonly #pending = new Set<ControlSocket>();
  #closed = false;

  constructor(
    name: string,
    url: string,
    transport: string,
    codec: string,
    access: Access,
    maxFds: number,
    handshake: AcceptHandshake,
    events: LocalListenerEvents,
  ) {
    this.url = url;
    this.#access = access;
    this.#transport = transport;
    this.#codec = codec;
    this.#maxFds = maxFds;
    this.#handshake = handshake;
    this.#events = events;
    const fd = sys(() => native.unixSocket(native.pipeConstants.SOCK_STREAM), { path: url });
    try {
      // An abstract name in use is EADDRINUSE (another listener, alive: abstract names vanish with their socket).
      if (sys(() => native.unixBind(fd, Buffer.from(`\0${name}`)), { path: url }) !== 0) throw new IpcError(errno.EADDRINUSE, 'bind', { path: url });
      sys(() => native.unixListen(fd, 511), { path: url });
    } catch (e) {
      native.fdClose(fd);
      throw e;
    }
    this.#fd = fd;
    this.#watch = watchFd(fd, READABLE, (_events, error) => (error ? this.#events.error(error) : this.#accept()));
  }

  #accept(): void {
    for (let i = 0; i < ACCEPT_BATCH && !this.#closed; i++) {
      let fd: number;
      try {
        fd = native.unixAccept(this.#fd);
      } catch (e) {
        // EMFILE and friends: report, keep listening.
        this.#events.error(new IpcError((e as { errno: number }).errno, 'accept4', { path: this.url }));
        return;
      }
      if (fd < 0) return;
      void this.#serve(new ControlSocket(fd));
    }
  }

  async #serve(ctrl: ControlSocket): Promise<void> {
    let peer: PeerCredentials;
    try {
      peer = ctrl.credentials();
    } catch (e) {
      ctrl.close();
      return this.#events.error(e as Error);
    }
    if (!this.#access.allows(peer)) {
      ctrl.refuse(new Refusal('EACCES', `uid ${peer.uid} (pid ${peer.pid}) is not allowed by this listener's allowUids/allowGids`).reply);
      return this.#events.refused(peer);
    }
    if (this.#pending.size >= PENDING_MAX) {
      const oldest = this.#pending.values().next().value!;
      this.#pending.delete(oldest);
      oldest.close();
    }
    this.#pending.add(ctrl);
    let fds: number[] = [];
    try {
      const got = await ctrl.readMessage(this.url, HANDSHAKE_MS, this.#maxFds);
      fds = got.fds;
      if (this.#closed || ctrl.closed) throw ControlSocket.refused(this.url);
      const hello = checkHello(got.value, this.#transport, this.#codec);
      // From here on the descriptors are the transport's to keep or close.
      const handed = fds;
      fds = [];
      const answer = this.#handshake(ctrl, hello, handed, peer);
      try {
        ctrl.sendMessage(answer.reply, answer.fds ?? [], this.url);
      } catch (e) {
        answer.failed();
        throw e;
      }
      this.#pending.delete(ctrl);
      answer.done();
    } catch (e) {
      this.#pending.delete(ctrl);
      closeAll(fds);
      if (e instanceof Refusal && !ctrl.closed) ctrl.refuse(e.reply);
      else ctrl.close();
      this.#events.error(e instanceof Refusal ? Object.assign(new Error(`${this.url}: refused a peer (pid ${peer.pid}, uid ${peer.uid}): ${e.message}`), { code: 'ERR_IPCKIT_HANDSHAKE' }) : (e as Error));
    }
  }

  ref(): void {
    this.#watch?.ref();
  }

  unref(): void {
    this.#watch?.unref();
  }

  /** Stops accepting; handshakes in progress are dropped. Connections already made stay. Idempotent. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#watch?.stop();
    this.#watch = null;
    native.fdClose(this.#fd);
    this.#fd = -1;
    for (const ctrl of this.#pending) ctrl.close();
    this.#pending.clear();
  }
}

export interface LocalConnection {
  ctrl: ControlSocket;
  /** The listener's hello (its answer), checked. */
  reply: Hello;
  /** Descriptors that came with it (the caller owns them). */
  fds: number[];
  /** The listener's credentials. */
  peer: PeerCredentials;
}

/**
 * Connector side: connects, checks who listens, sends the hello `prepare`
 * makes with its descriptors (still ours to close afterwards) and returns
 * the listener's checked answer.
 */
export async function connectLocal(
  name: string,
  url: string,
  prepare: (listener: PeerCredentials) => { hello: Hello; fds: readonly number[] },
  access: Access,
  maxReplyFds: number,
  timeoutMs = HANDSHAKE_MS,
): Promise<LocalConnection> {
  const ctrl = await ControlSocket.connect(name, url, timeoutMs);
  try {
    const peer = ctrl.credentials();
    if (!access.allows(peer)) {
      throw Access.refused(url, 'connect', `the listener runs as uid ${peer.uid} (pid ${peer.pid}), which this side's allowUids/allowGids do not allow`);
    }
    // What the hello carries may depend on who listens (sysvmq: queues it can open).
    const { hello, fds } = prepare(peer);
    try {
      ctrl.sendMessage(hello, fds, url);
    } catch (e) {
      // A listener that refused us may have hung up already: its answer still waits to be read.
      const code = (e as { code?: string }).code;
      if (code !== 'EPIPE' && code !== 'ECONNRESET') throw e;
    }
    const got = await ctrl.readMessage(url, timeoutMs, maxReplyFds);
    try {
      const reply = checkReply(url, got.value, hello.transport, hello.codec);
      return { ctrl, reply, fds: got.fds, peer };
    } catch (e) {
      closeAll(got.fds);
      throw e;
    }
  } catch (e) {
    ctrl.close();
    throw e;
  }
}
