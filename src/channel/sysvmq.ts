// sysvmq: transport: two private System V message queues per connection,
// one per direction (msgget(IPC_PRIVATE), msgsnd/msgrcv via src/mq-sysv.ts).
// One queue for both directions would deadlock: its byte capacity is shared,
// so a full queue of requests leaves no room for the replies that drain it.
// A receive that has to wait runs on a dedicated waiter thread (msgrcv cannot
// be polled), never the libuv threadpool.
//
// Rendezvous and liveness: the abstract socket "\0ipckit-sysvmq/NAME", as
// for shm: and mq:. System V queues have no names to unlink, and IPC_RMID
// destroys one at once, so each side removes the queue when its channel
// ends (the survivor of a kill -9 does it): only both peers dying together
// leaves the queue (ipcs -q, ipckit ls). The queue's capacity is
// /proc/sys/kernel/msgmnb bytes (16 KiB by default): this transport is for
// reach (C programs, ipcs), not speed.
import { connect as netConnect, createServer, type Server, type Socket } from 'node:net';
import { IpcError, stateError, sys } from '../errors.js';
import { fromId, get, type SysvQueue } from '../mq-sysv.js';
import { native } from '../native.js';
import type { Link } from './link.js';
import { QueueLink, type QueuePair } from './mq.js';
import { HANDSHAKE_MS, readLine } from './shm.js';

/** mtype of every message (the queues are private to the connection). */
const TYPE = 1;
const BATCH = 64;

export function sysvSocketPath(name: string): string {
  return `\0ipckit-sysvmq/${name}`;
}

function pair(out: SysvQueue, inbound: SysvQueue, maxFrame: number): QueuePair {
  const opts = { maxSize: maxFrame };
  return {
    maxFrame,
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

export async function connectSysvMq(name: string, maxMessageSize: number): Promise<Link> {
  const url = `sysvmq:${name}`;
  const socket = await new Promise<Socket>((resolve, reject) => {
    const s = netConnect(sysvSocketPath(name));
    s.once('connect', () => {
      s.removeAllListeners('error');
      resolve(s);
    });
    s.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'connect', { path: url }) : e));
  });
  let up: SysvQueue | null = null;
  let down: SysvQueue | null = null;
  try {
    up = get('private', { mode: 0o600 });
    down = get('private', { mode: 0o600 });
    socket.write(`${JSON.stringify({ v: 1, up: up.id, down: down.id })}\n`);
    const reply = await readLine(socket, url, HANDSHAKE_MS);
    if (reply.error) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the listener refused: ${String(reply.error)}`);
    return new QueueLink('sysvmq', pair(up, down, maxMessageSize + 5), socket);
  } catch (e) {
    socket.destroy();
    removeAll(up, down);
    throw e;
  }
}

export async function listenSysvMq(name: string, maxMessageSize: number, onLink: (link: Link) => void, onError: (e: Error) => void): Promise<Server> {
  const url = `sysvmq:${name}`;
  const server = createServer((socket) => {
    (async () => {
      const hello = await readLine(socket, url, HANDSHAKE_MS);
      const up = fromId(Number(hello.up));
      const down = fromId(Number(hello.down));
      // Anyone may connect to an abstract socket: use (and later remove) the
      // queues only if the connecting process's user created them.
      const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
      const cred = typeof fd === 'number' && fd >= 0 ? sys(() => native.unixPeerCred(fd), { path: url }) : null;
      if (!cred || up.stat().cuid !== cred.uid || down.stat().cuid !== cred.uid || up.id === down.id) {
        socket.end(`${JSON.stringify({ error: 'queues not created by the connecting user' })}\n`);
        throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: a peer offered queue ids ${up.id}/${down.id} its user did not create`);
      }
      socket.write(`${JSON.stringify({ v: 1 })}\n`);
      return new QueueLink('sysvmq', pair(down, up, maxMessageSize + 5), socket);
    })().then(onLink, (e: Error) => {
      socket.destroy();
      onError(e);
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(e.errno ? new IpcError(Math.abs(e.errno), 'bind', { path: url }) : e));
    server.listen(sysvSocketPath(name), () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  return server;
}
