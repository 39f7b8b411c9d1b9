// sysvmq: transport: two private System V message queues per connection,
// one per direction (msgget(IPC_PRIVATE), msgsnd/msgrcv via src/mq/mq-sysv.ts).
// One queue for both directions would deadlock: its byte capacity is shared,
// so a full queue of requests leaves no room for the replies that drain it.
// A receive that has to wait runs on a dedicated waiter thread (msgrcv cannot
// be polled), never the libuv threadpool.
//
// Rendezvous and liveness (rendezvous.ts): the abstract socket
// "\0ipckit-sysvmq/NAME", as for shm: and mq:. System V queues have no
// descriptors to pass: the hello carries the two queue ids, and the listener
// uses them only if the kernel says the connecting process's user created
// both (msg_perm.cuid, which nobody can change), so it never touches a queue
// on behalf of a peer that could not. System V queues have no names to
// unlink, and IPC_RMID
// destroys one at once, so each side removes the queue when its channel
// ends (the survivor of a kill -9 does it): only both peers dying together
// leaves the queue (ipcs -q, ipckit ls). The queue's capacity is
// /proc/sys/kernel/msgmnb bytes (16 KiB by default): this transport is for
// reach (C programs, ipcs), not speed.
import { readLimit } from '../core/limits.js';
import { fromId, get, type SysvQueue } from '../mq/mq-sysv.js';
import type { PeerCredentials } from './access.js';
import type { ControlSocket } from './control.js';
import { Refusal, makeHello, type Hello } from './hello.js';
import type { Link } from './link.js';
import { QueueLink, type QueueListener, type QueuePair, type QueueSettings } from './queue-link.js';
import { LocalListener, connectLocal, type LocalListenerEvents } from './rendezvous.js';

/** mtype of every message (the queues are private to the connection). */
const TYPE = 1;
const BATCH = 64;

function sysvSocketName(name: string): string {
  return `ipckit-sysvmq/${name}`;
}

/**
 * Largest queue message: msgsnd refuses a longer one (EINVAL), so a longer
 * frame goes in parts (long-frame.ts). A message can also never be larger
 * than a whole queue (msgmnb). Both ends share the IPC namespace the queues
 * live in, so they read the same limits.
 */
function largestMessage(): number {
  const limits = ['msgmax', 'msgmnb'].map((n) => readLimit(`/proc/sys/kernel/${n}`).value);
  return Math.min(...limits.map((v) => (typeof v === 'number' && v > 0 ? v : 8192)));
}

function pair(out: SysvQueue, inbound: SysvQueue, maxFrame: number): QueuePair {
  const part = largestMessage();
  const opts = { maxSize: Math.min(maxFrame, part) };
  return {
    maxFrame,
    part,
    trySend: (frame) => out.trySend(TYPE, frame),
    send: (frame, signal) => out.send(TYPE, frame, { signal }),
    tryReceiveMany: () => inbound.tryReceiveMany(BATCH, opts).map((m) => m.data),
    receive: async (signal) => (await inbound.receive({ ...opts, signal })).data,
    close: () => {
      for (const q of [out, inbound]) {
        q.close();
        try {
          q.remove();
        } catch {
          // Already removed by the peer (EINVAL/EIDRM).
        }
      }
    },
  };
}

function removeAll(...queues: Array<SysvQueue | null>): void {
  for (const q of queues) {
    if (!q) continue;
    q.close();
    try {
      q.remove();
    } catch {}
  }
}

export async function connectSysvMq(name: string, s: QueueSettings): Promise<Link> {
  const url = `sysvmq:${name}`;
  const maxFrame = s.maxMessageSize + 5;
  let up: SysvQueue | null = null;
  let down: SysvQueue | null = null;
  const prepare = (listener: PeerCredentials) => {
    up = get('private', { mode: 0o600 });
    down = get('private', { mode: 0o600 });
    // A listener run by another user (one allowUids admits) must be able to
    // open them: the creator may hand the owner's rights to it (IPC_SET);
    // msg_perm.cuid still says who made them, which is what the listener checks.
    const self = process.geteuid?.() ?? 0;
    if (listener.uid !== self && listener.uid !== 0) for (const q of [up, down]) q.set({ uid: listener.uid, gid: listener.gid });
    return { hello: makeHello('sysvmq', s.codec, s.maxMessageSize, { up: up.id, down: down.id }), fds: [] };
  };
  try {
    const conn = await connectLocal(sysvSocketName(name), url, prepare, s.access, 0, s.timeout);
    return new QueueLink('sysvmq', pair(up!, down!, maxFrame), conn.ctrl, conn.peer, maxFrame, conn.reply.max + 5);
  } catch (e) {
    removeAll(up, down);
    throw e;
  }
}

/** The queue `id` a peer named, if its user created it (msg_perm.cuid). */
function peersQueue(id: unknown, peer: PeerCredentials): SysvQueue {
  if (!Number.isSafeInteger(id) || (id as number) < 0 || (id as number) > 0x7fffffff) throw new Refusal('EPROTO', 'impossible queue id');
  let q: SysvQueue;
  try {
    q = fromId(id as number);
  } catch {
    throw new Refusal('EPROTO', `no queue with id ${id as number}`);
  }
  let cuid = -1;
  try {
    cuid = q.stat().cuid;
  } catch {}
  if (cuid !== peer.uid) {
    q.close();
    throw new Refusal('EACCES', `queue id ${id as number} was not created by the connecting user (uid ${peer.uid})`);
  }
  return q;
}

export function listenSysvMq(name: string, s: QueueSettings, onLink: (link: Link) => void, events: LocalListenerEvents): QueueListener {
  const url = `sysvmq:${name}`;
  const maxIn = s.maxMessageSize + 5;
  const handshake = (ctrl: ControlSocket, hello: Hello, _fds: number[], peer: PeerCredentials) => {
    if (hello.up === hello.down) throw new Refusal('EPROTO', 'the two queue ids must differ');
    const up = peersQueue(hello.up, peer);
    let down: SysvQueue;
    try {
      down = peersQueue(hello.down, peer);
    } catch (e) {
      up.close();
      throw e;
    }
    const link = new QueueLink('sysvmq', pair(down, up, maxIn), ctrl, peer, maxIn, hello.max + 5);
    return { reply: makeHello('sysvmq', s.codec, s.maxMessageSize), done: () => onLink(link), failed: () => link.destroy() };
  };
  return new LocalListener(sysvSocketName(name), url, 'sysvmq', s.codec, s.access, 0, handshake, events);
}
