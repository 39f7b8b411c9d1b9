// unix-seqpacket: transport: each frame is one SOCK_SEQPACKET message
// (src/sockets/message-socket.ts: uv_poll + non-blocking sendmsg/recvmsg), so the
// kernel keeps the boundaries and no length prefix is needed. A message must
// fit the socket send buffer (net.core.wmem_default minus 32 bytes of
// overhead), which bounds maxMessageSize. As on stream transports, a clean
// close sends a one-byte "bye" frame first: a killed peer's socket also
// reads as end-of-file, and only the bye tells the two apart.
import type { PeerCredentials } from './access.js';
import { badFrame, joinFrame, KIND_BYE } from './frame.js';
import { WriteTickets, type CloseInfo, type Link, type LinkEvents } from './link.js';
import { CLOSE_GRACE_MS, parseHello, readFirst } from './stream.js';
import { readLimit } from '../core/limits.js';
import type { MessageSocket } from '../sockets/message-socket.js';

/** Frames handed to the socket and not yet taken by the kernel before tryWrite() says "not now". */
const WINDOW_FRAMES = 256;
const WINDOW_BYTES = 1024 * 1024;
const BYE = new Uint8Array([KIND_BYE]);

/** The largest seqpacket message the kernel takes: sk_sndbuf (wmem_default) minus 32 (af_unix). */
export function seqpacketMaxFrame(): number {
  const wmem = readLimit('/proc/sys/net/core/wmem_default').value;
  return (typeof wmem === 'number' ? wmem : 212992) - 32;
}

/** Reads the first message, which must be the peer's hello, within `timeoutMs` (the socket is left paused). */
export function readMessageHello(sock: MessageSocket, what: string, timeoutMs: number): Promise<Record<string, unknown>> {
  return readFirst(sock, 'message', (data) => parseHello(data, what), what, timeoutMs);
}

export class SeqpacketLink implements Link {
  /** tryWrite() joins header and body into a frame of its own (joinFrame). */
  readonly copiesOnWrite = true;
  readonly transport: string;
  readonly maxFrame: number;
  readonly peer: PeerCredentials | null;
  readonly #sock: MessageSocket;
  #events: LinkEvents | null = null;
  #inFlightFrames = 0;
  #inFlightBytes = 0;
  #wantWritable = false;
  #closing: Promise<void> | null = null;
  #failure: Error | undefined;
  #peerSaidBye = false;
  #peerEnded = false;
  #finished = false;
  /** Frames the socket queues until the kernel takes them (the socket's send() resolves then). */
  readonly #tickets = new WriteTickets();

  /** `maxIn` is the socket's own receive limit (set when it was made); `maxOut`: largest frame sent (the peer's limit). */
  constructor(transport: string, sock: MessageSocket, maxIn: number, maxOut: number, peer: PeerCredentials | null) {
    this.transport = transport;
    this.#sock = sock;
    this.#maxIn = maxIn;
    this.maxFrame = maxOut;
    this.peer = peer;
  }

  readonly #maxIn: number;

  start(events: LinkEvents): void {
    this.#events = events;
    const s = this.#sock;
    s.on('message', (data: Buffer) => {
      if (data.length === 1 && data[0] === KIND_BYE) this.#peerSaidBye = true;
      else events.onFrame(data, true);
    });
    s.on('end', () => {
      this.#peerEnded = true;
    });
    s.on('error', (e: Error & { code?: string; syscall?: string }) => {
      // A message longer than our receive buffer was cut by the kernel: refuse the channel.
      if (e.code === 'EMSGSIZE' && e.syscall === 'recvmsg') this.destroy(badFrame(`incoming frame exceeds maxMessageSize (${this.#maxIn - 5} bytes of payload): ${e.message}`));
      // EPIPE/ECONNRESET, and POLLERR (libuv reports it as a uv_poll EBADF) when the peer died
      // with our messages unread: the peer is gone, which is 'peer-lost', not a failure here.
      else if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET' && e.syscall !== 'uv_poll' && !this.#failure) this.#failure = e;
    });
    s.on('close', () => {
      if (this.#failure) return this.#finish({ reason: 'error', error: this.#failure });
      if (this.#closing) return this.#finish({ reason: 'closed' });
      if (this.#peerEnded && this.#peerSaidBye) return this.#finish({ reason: 'peer-closed' });
      this.#finish({ reason: 'peer-lost' });
    });
    // The hello left the socket paused.
    s.resume();
  }

  #finish(info: CloseInfo): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#events?.onClose(info);
  }

  #send(frame: Uint8Array): Promise<void> {
    this.#inFlightFrames++;
    this.#inFlightBytes += frame.byteLength;
    const done = () => {
      this.#inFlightFrames--;
      this.#inFlightBytes -= frame.byteLength;
      if (this.#wantWritable && this.#inFlightFrames < WINDOW_FRAMES >> 1 && this.#inFlightBytes < WINDOW_BYTES >> 1) {
        this.#wantWritable = false;
        this.#events?.onWritable();
      }
    };
    const p = this.#sock.send(frame);
    p.then(() => {
      done();
      this.#tickets.written(this.#events, 1);
    }, (e: Error & { code?: string }) => {
      done();
      // The peer vanished (EPIPE) shows up as the socket's close; anything else fails the link.
      if (e.code !== 'EPIPE' && e.code !== 'ECONNRESET' && e.code !== 'ERR_IPCKIT_CLOSED') this.destroy(e);
    });
    return p;
  }

  tryWrite(header: Uint8Array, body: Uint8Array): boolean {
    if (this.#closing || this.#sock.closed || this.#inFlightFrames >= WINDOW_FRAMES || this.#inFlightBytes >= WINDOW_BYTES) {
      this.#wantWritable = true;
      return false;
    }
    const frame = joinFrame(header, body);
    this.#tickets.accepted();
    void this.#send(frame).catch(() => {});
    return true;
  }

  unwritten(): number {
    return this.#tickets.unwritten(this.#sock.queuedSends > 0);
  }

  pause(): void {
    this.#sock.pause();
  }

  resume(): void {
    this.#sock.resume();
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise<void>((resolve) => {
      const s = this.#sock;
      if (s.closed) return resolve();
      // A peer that never reads never answers our end: cut after a grace period.
      const timer = setTimeout(() => s.close(), CLOSE_GRACE_MS).unref();
      s.once('close', () => {
        clearTimeout(timer);
        resolve();
      });
      // Keep reading so the peer's end (and its last frames) arrive; the socket closes itself after it.
      s.resume();
      // The bye queues behind frames still waiting for room, then our end (shutdown SHUT_WR) follows it.
      this.#send(BYE).then(
        () => {
          try {
            s.end();
          } catch {
            s.close();
          }
        },
        () => s.close(),
      );
    });
    return this.#closing;
  }

  destroy(error?: Error): void {
    if (error && !this.#failure) this.#failure = error;
    this.#sock.close();
  }

  ref(): void {
    this.#sock.ref();
  }

  unref(): void {
    this.#sock.unref();
  }
}
