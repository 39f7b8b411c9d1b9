// mq: transport: frames travel as whole POSIX message-queue messages
// (mq_send/mq_receive, src/mq/mq-posix.ts), one queue per direction.
//
// Rendezvous (rendezvous.ts): the listener owns the abstract socket
// "\0ipckit-mq/NAME". A connector creates two private queues (exclusive,
// mode 0600), opens each a second time with the access the listener needs
// (the "up" queue read-only, the "down" queue write-only), removes both
// names at once and sends those two descriptors with its hello by
// SCM_RIGHTS. The listener checks what it got (fstatfs: the mqueue
// filesystem; the access modes) and never opens a queue by name, so it can
// only do with them what the connector itself could, and no name is left in
// /dev/mqueue whenever a process dies.
// The link itself, liveness and the close (the control socket's end of
// file, the bye frame) are queue-link.ts's, shared with sysvmq:.
// Queue memory is charged to the connecting user's RLIMIT_MSGQUEUE (819200
// bytes by default; see queueBytes in mq-posix.ts), so a connection's queues
// are small: 10 messages of at most 1 KiB each way, 22,400 bytes a
// connection, 36 connections at the default limit. A frame longer than one
// queue message travels in parts (long-frame.ts).
import { randomBytes } from 'node:crypto';
import { constants as fsc } from 'node:fs';
import { readLimit, rlimitMsgqueue } from '../core/limits.js';
import { fromFd as mqFromFd, open as mqOpen, queueBytes, unlink as mqUnlink, type PosixQueue } from '../mq/mq-posix.js';
import { native } from '../core/native.js';
import type { PeerCredentials } from './access.js';
import { closeAll, type ControlSocket } from './control.js';
import { Refusal, makeHello, type Hello } from './hello.js';
import type { Link } from './link.js';
import { QueueLink, type QueueListener, type QueuePair, type QueueSettings } from './queue-link.js';
import { LocalListener, connectLocal, type LocalListenerEvents } from './rendezvous.js';

function mqSocketName(name: string): string {
  return `ipckit-mq/${name}`;
}

/** Queue messages of a connection: enough for small frames to stream (the queue wakes a reader per batch), small enough for many connections. */
const QUEUE_MESSAGES = 10;
const QUEUE_MESSAGE_SIZE = 1024;
/** Smallest queue message a listener accepts: a long frame's first part must carry some of the frame. */
const MIN_QUEUE_MESSAGE = 16;

/** The queues a connector whose frames are at most `maxFrame` bytes creates. */
function queueShape(maxFrame: number): { maxMessages: number; messageSize: number } {
  const msgMax = readLimit('/proc/sys/fs/mqueue/msg_max').value;
  return {
    maxMessages: typeof msgMax === 'number' ? Math.max(1, Math.min(QUEUE_MESSAGES, msgMax)) : QUEUE_MESSAGES,
    messageSize: Math.max(MIN_QUEUE_MESSAGE, Math.min(maxFrame, QUEUE_MESSAGE_SIZE)),
  };
}

/** How many connections of `maxFrame` this user's RLIMIT_MSGQUEUE holds when it has no other queues. */
function connectionsAllowed(maxFrame: number): number {
  const limit = rlimitMsgqueue().value;
  const { maxMessages, messageSize } = queueShape(maxFrame);
  return typeof limit === 'number' ? Math.floor(limit / (2 * queueBytes(maxMessages, messageSize))) : Infinity;
}

function posixPair(out: PosixQueue, inbound: PosixQueue): QueuePair {
  return {
    maxFrame: Number.MAX_SAFE_INTEGER,
    part: out.messageSize,
    trySend: (frame) => out.trySend(frame),
    send: (frame, signal) => out.send(frame, { signal }),
    tryReceiveMany: () => inbound.tryReceiveMany().map((m) => m.data),
    receive: async (signal) => (await inbound.receive({ signal })).data,
    close: () => {
      out.close();
      inbound.close();
    },
  };
}

/** A fresh queue, opened twice: `keep` for this side, `give` (the other access) for the listener. */
function queueFor(name: string, maxFrame: number, keepWrites: boolean): { keep: PosixQueue; give: PosixQueue } {
  const keep = mqOpen(name, { create: true, exclusive: true, mode: 0o600, ...queueShape(maxFrame), ...(keepWrites ? { writeOnly: true } : { readOnly: true }) });
  try {
    return { keep, give: mqOpen(name, keepWrites ? { readOnly: true } : { writeOnly: true }) };
  } catch (e) {
    keep.close();
    throw e;
  } finally {
    // Both opens done (or failed): the name is not needed, so nothing can be left behind.
    try {
      mqUnlink(name);
    } catch {}
  }
}

export async function connectMq(name: string, s: QueueSettings): Promise<Link> {
  const url = `mq:${name}`;
  const maxFrame = s.maxMessageSize + 5;
  const base = `/ipckit-mq-${process.pid}-${randomBytes(6).toString('hex')}`;
  const made: PosixQueue[] = [];
  try {
    const up = queueFor(`${base}-up`, maxFrame, true);
    made.push(up.keep, up.give);
    const down = queueFor(`${base}-down`, maxFrame, false);
    made.push(down.keep, down.give);
    const hello = makeHello('mq', s.codec, s.maxMessageSize);
    const conn = await connectLocal(mqSocketName(name), url, () => ({ hello, fds: [up.give.fd, down.give.fd] }), s.access, 0, s.timeout);
    // The listener has its own copies of the two it needed.
    up.give.close();
    down.give.close();
    return new QueueLink('mq', posixPair(up.keep, down.keep), conn.ctrl, conn.peer, maxFrame, conn.reply.max + 5);
  } catch (e) {
    for (const q of made) q.close();
    throw e;
  }
}

/** Checks the two queue descriptors a connector sent: POSIX queues, the first readable, the second writable. */
function receivedQueues(fds: number[], url: string): { inbound: PosixQueue; out: PosixQueue } {
  if (fds.length !== 2) throw new Refusal('EPROTO', `expected two queue descriptors, got ${fds.length}`);
  const access = fds.map((fd) => native.fdInspect(fd));
  if (access.some((a) => a.fsType !== native.shmConstants.MQUEUE_MAGIC)) throw new Refusal('EPROTO', 'the descriptors sent are not POSIX message queues');
  if (access[0]!.access !== fsc.O_RDONLY || access[1]!.access !== fsc.O_WRONLY) {
    throw new Refusal('EPROTO', 'the queues sent must be open read-only (up) and write-only (down)');
  }
  const inbound = mqFromFd(fds[0]!, `${url} (up)`);
  fds[0] = -1;
  try {
    const out = mqFromFd(fds[1]!, `${url} (down)`);
    fds[1] = -1;
    if (out.messageSize < MIN_QUEUE_MESSAGE) {
      out.close();
      throw new Refusal('EPROTO', `the down queue's messages (${out.messageSize} bytes) are shorter than ${MIN_QUEUE_MESSAGE}`);
    }
    return { inbound, out };
  } catch (e) {
    inbound.close();
    throw e;
  }
}

export function listenMq(name: string, s: QueueSettings, onLink: (link: Link) => void, events: LocalListenerEvents): QueueListener {
  const url = `mq:${name}`;
  const maxIn = s.maxMessageSize + 5;
  const handshake = (ctrl: ControlSocket, hello: Hello, fds: number[], peer: PeerCredentials) => {
    try {
      const { inbound, out } = receivedQueues(fds, url);
      const link = new QueueLink('mq', posixPair(out, inbound), ctrl, peer, maxIn, hello.max + 5);
      return { reply: makeHello('mq', s.codec, s.maxMessageSize), done: () => onLink(link), failed: () => link.destroy() };
    } finally {
      closeAll(fds);
    }
  };
  const listener = new LocalListener(mqSocketName(name), url, 'mq', s.codec, s.access, 2, handshake, events);
  return { close: () => listener.close(), ref: () => listener.ref(), unref: () => listener.unref(), maxConnections: connectionsAllowed(maxIn) };
}
