// The hello exchange of the socket transports that carry it in-band: byte
// streams (unix:, unix-abstract:, tcp://, pipe:) and seqpacket sockets.
import type { Socket } from 'node:net';
import { stateError } from '../core/errors.js';
import { Access, type PeerCredentials } from './access.js';
import { HANDSHAKE_MS } from './control.js';
import { Refusal, checkHello, checkReply, makeHello, type Hello } from './hello.js';
import type { Link } from './link.js';
import type { MessageSocket } from '../sockets/message-socket.js';
import { StreamLink, helloFrame, readHello, type Liveness } from './stream.js';
import type { Heartbeat } from './net-options.js';
import { SeqpacketLink, readMessageHello, seqpacketMaxFrame } from './seqpacket.js';
import type { ListenerEvents, Settings } from './transport.js';

/** Refuses a listener whose user this side does not trust (local transports: the kernel says who listens). */
function checkListener(s: Settings, url: string, peer: PeerCredentials | null): void {
  if (peer && !s.access.allows(peer)) {
    throw Access.refused(url, 'connect', `the listener runs as uid ${peer.uid} (pid ${peer.pid}), which this side's allowUids/allowGids do not allow`);
  }
}

/** What a hello says of this side's heartbeat (network streams: `heartbeat`, the ping interval in ms). */
function heartbeatHello(hb: Heartbeat | null): Record<string, unknown> {
  return hb ? { heartbeat: hb.interval } : {};
}

/**
 * The heartbeats of a link: only when both hellos announced them (a peer
 * without them may not know the ping frame). Each side pings at its own
 * interval; the silence that means peer-lost is this side's timeout, and at
 * least 3 of the peer's intervals (its pings come that often).
 */
function liveness(hb: Heartbeat | null, peerHello: Record<string, unknown>, url: string): Liveness | null {
  const theirs = peerHello.heartbeat;
  if (!hb || typeof theirs !== 'number' || !Number.isInteger(theirs) || theirs < 1 || theirs > 2 ** 31 - 1) return null;
  return { interval: hb.interval, lostAfter: Math.max(hb.timeout, 3 * theirs), url };
}

/**
 * Connector side of a byte stream (unix:, unix-abstract:, tcp://, tls://,
 * pipe:): our hello, then the listener's (or its refusal) within `timeout`.
 * `hb`: this side's heartbeat (network streams).
 */
export async function connectStream(scheme: string, url: string, socket: Socket, s: Settings, peer: PeerCredentials | null, timeout: number, hb: Heartbeat | null = null): Promise<Link> {
  try {
    checkListener(s, url, peer);
    socket.write(helloFrame(makeHello(scheme, s.codec.name, s.maxMessageSize, heartbeatHello(hb))));
    const { value, rest } = await readHello(socket, url, timeout);
    const reply = checkReply(url, value, scheme, s.codec.name);
    return new StreamLink(scheme, socket, s.maxMessageSize + 5, reply.max + 5, rest, peer, liveness(hb, reply, url));
  } catch (e) {
    socket.destroy();
    throw e;
  }
}

/** Seqpacket frames are whole messages: the kernel's message limit caps the frame. */
export function seqpacketFrame(s: Settings): number {
  return Math.min(s.maxMessageSize + 5, seqpacketMaxFrame());
}

/** Connector side of a seqpacket socket: the hellos are the first message each way. */
export async function connectSeqpacket(scheme: string, url: string, sock: MessageSocket, frame: number, s: Settings, timeout: number): Promise<Link> {
  try {
    const peer = sock.peerCredentials();
    checkListener(s, url, peer);
    await sock.send(helloFrame(makeHello(scheme, s.codec.name, s.maxMessageSize), false));
    const reply = checkReply(url, await readMessageHello(sock, url, timeout), scheme, s.codec.name);
    return new SeqpacketLink(scheme, sock, frame, Math.min(reply.max + 5, seqpacketMaxFrame()), peer);
  } catch (e) {
    sock.close();
    throw e;
  }
}

/** One accepted connection of a stream-like listener, as the hello exchange needs it. */
interface AcceptedEnd {
  /** The peer's hello, and what came right after it (byte streams). */
  read(): Promise<{ value: Record<string, unknown>; rest?: Buffer }>;
  /** Answers with a refusal and lets the peer read it before hanging up. */
  refuse(refusal: Refusal): void;
  drop(): void;
  /** Sends our hello and makes the link (the peer's checked hello says its limit). */
  open(peerHello: Hello, rest: Buffer | undefined): Link;
}

/**
 * Listener side of stream-like transports: refuse a peer the access rules
 * do not admit (answer EACCES, read nothing), else read its hello, check it,
 * answer with ours, and hand over the link.
 */
function acceptWithHello(scheme: string, url: string, end: AcceptedEnd, peer: PeerCredentials | null, s: Settings, events: ListenerEvents): void {
  if (peer && !s.access.allows(peer)) {
    end.refuse(new Refusal('EACCES', `uid ${peer.uid} (pid ${peer.pid}) is not allowed by this listener's allowUids/allowGids`));
    events.refused(peer);
    return;
  }
  end.read().then(
    ({ value, rest }) => {
      let hello: Hello;
      try {
        hello = checkHello(value, scheme, s.codec.name);
      } catch (e) {
        if (e instanceof Refusal) end.refuse(e);
        else end.drop();
        return events.error(handshakeFailure(url, peer, e as Error));
      }
      events.link(end.open(hello, rest));
    },
    (e: Error) => {
      end.drop();
      events.error(handshakeFailure(url, peer, e));
    },
  );
}

/** Listener side of a byte stream; `hb`: this side's heartbeat (network streams). */
export function acceptStream(scheme: string, url: string, socket: Socket, peer: PeerCredentials | null, s: Settings, events: ListenerEvents, hb: Heartbeat | null = null): void {
  socket.on('error', () => {});
  acceptWithHello(scheme, url, {
    read: () => readHello(socket, url, HANDSHAKE_MS),
    refuse: (refusal) => refuseStream(socket, refusal),
    drop: () => socket.destroy(),
    open: (hello, rest) => {
      socket.removeAllListeners('error');
      socket.write(helloFrame(makeHello(scheme, s.codec.name, s.maxMessageSize, heartbeatHello(hb))));
      return new StreamLink(scheme, socket, s.maxMessageSize + 5, hello.max + 5, rest ?? null, peer, liveness(hb, hello, url));
    },
  }, peer, s, events);
}

/** The seqpacket version of acceptStream: the hello is the first message. */
export function acceptSeqpacket(scheme: string, url: string, sock: MessageSocket, frame: number, s: Settings, events: ListenerEvents): void {
  sock.on('error', () => {});
  let peer: PeerCredentials;
  try {
    peer = sock.peerCredentials();
  } catch (e) {
    sock.close();
    return events.error(e as Error);
  }
  acceptWithHello(scheme, url, {
    read: async () => ({ value: await readMessageHello(sock, url, HANDSHAKE_MS) }),
    refuse: (refusal) => refuseMessage(sock, refusal),
    drop: () => sock.close(),
    open: (hello) => {
      sock.removeAllListeners('error');
      void sock.send(helloFrame(makeHello(scheme, s.codec.name, s.maxMessageSize), false)).catch(() => {});
      return new SeqpacketLink(scheme, sock, frame, Math.min(hello.max + 5, seqpacketMaxFrame()), peer);
    },
  }, peer, s, events);
}

/** How long a refused peer has to read its answer and hang up before its socket is cut. */
const REFUSAL_LINGER_MS = 2000;

/**
 * Answers with a refusal and closes without losing it: closing with the
 * peer's bytes unread would reset the connection, and the peer could see
 * ECONNRESET before our answer. So: answer, end our side, drop what the peer
 * sends until it hangs up (or the linger time passes).
 */
function refuseStream(socket: Socket, refusal: Refusal): void {
  socket.end(helloFrame(refusal.reply));
  socket.on('data', () => {});
  socket.resume();
  setTimeout(() => socket.destroy(), REFUSAL_LINGER_MS).unref();
}

function refuseMessage(sock: MessageSocket, refusal: Refusal): void {
  sock.on('message', () => {});
  sock.resume();
  sock.send(helloFrame(refusal.reply, false)).then(
    () => {
      try {
        sock.end();
      } catch {
        sock.close();
      }
    },
    () => sock.close(),
  );
  setTimeout(() => sock.close(), REFUSAL_LINGER_MS).unref();
}

function handshakeFailure(url: string, peer: PeerCredentials | null, e: Error): Error {
  if ((e as { code?: string }).code === 'ERR_IPCKIT_HANDSHAKE' && !(e instanceof Refusal)) return e;
  const who = peer ? ` (pid ${peer.pid}, uid ${peer.uid})` : '';
  return stateError('ERR_IPCKIT_HANDSHAKE', `${url}: refused a peer${who}: ${e.message}`);
}
