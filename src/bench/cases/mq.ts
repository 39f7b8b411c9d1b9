// posix-mq and sysv-mq: message queues between two processes.
// Round trips: the driver sends a ping, the echo answers with a pong (POSIX:
// one queue per direction; System V: one queue, type 1 one way and type 2
// back). One-way: batches with trySendMany, waiting (event-driven) only when
// the queue is full; the receiver drains with tryReceiveMany, waiting only
// when it is empty, then acknowledges on the pong direction. Waits are what an
// application gets: POSIX uv_poll on the queue descriptor, System V a waiter
// thread.
import { readFileSync } from 'node:fs';
import * as posix from '../../mq/mq-posix.js';
import * as sysv from '../../mq/mq-sysv.js';
import { payload, posixName, RttRecorder, unlessExited } from '../kit.js';
import { readLimit } from '../../core/limits.js';
import type { BenchCase, DriverContext, EchoContext, TrialParams, TrialResult } from '../types.js';

const BATCH = 256;
const ACK = Buffer.from('k');

/** One process's two directions, whatever the kind of queue. */
interface Link {
  send(data: Buffer): Promise<void>;
  sendMany(list: Buffer[]): number;
  receive(): Promise<Buffer>;
  receiveMany(max: number): number;
  /** Called once the peer is known to have opened everything (after the first round trip). */
  opened(): void;
  close(): void;
}

function posixLink(params: TrialParams, driver: boolean): Link {
  // msg_max (10 unless raised) bounds the capacity without CAP_SYS_RESOURCE.
  const maxMessages = Number(readFileSync('/proc/sys/fs/mqueue/msg_max', 'utf8'));
  const names = [posixName(params, 'ping'), posixName(params, 'pong')];
  const options = driver ? { create: true, exclusive: true, maxMessages, messageSize: Math.max(params.size, 1) } : {};
  const [ping, pong] = names.map((n) => posix.open(n, options)) as [posix.PosixQueue, posix.PosixQueue];
  const [out, inn] = driver ? [ping, pong] : [pong, ping];
  return {
    send: (d) => out.send(d),
    sendMany: (l) => out.trySendMany(l),
    receive: async () => (await inn.receive()).data,
    receiveMany: (max) => inn.tryReceiveMany(max).length,
    // Both sides have the queues open: the names can go now, so a crash leaves nothing.
    opened: () => {
      if (driver) for (const n of names) posix.unlink(n);
    },
    close: () => {
      ping.close();
      pong.close();
    },
  };
}

/**
 * The trial's System V key, derived from its unique name prefix (FNV-1a), so
 * the echo and cleanup() find the queue: cleanup runs after the trial's
 * private directory is swept, so the id cannot be left in a file there.
 */
function sysvKey(params: TrialParams): number {
  let h = 0x811c9dc5;
  for (const c of `ipckit-bench-mq:${params.namePrefix}`) h = Math.imul(h ^ c.charCodeAt(0), 0x01000193);
  return h | 0 || 1;
}

function sysvLink(id: number, driver: boolean): Link {
  const q = sysv.fromId(id);
  const [out, inn] = driver ? [1, 2] : [2, 1];
  return {
    send: (d) => q.send(out, d),
    sendMany: (l) => q.trySendMany(out, l),
    receive: async () => (await q.receive({ type: inn })).data,
    receiveMany: (max) => q.tryReceiveMany(max, { type: inn }).length,
    opened: () => undefined,
    close: () => q.close(),
  };
}

async function pingPong(link: Link, msg: Buffer, rtt: RttRecorder): Promise<void> {
  let first = true;
  do {
    rtt.start();
    await link.send(msg);
    await link.receive();
    if (first) link.opened();
    first = false;
  } while (!rtt.stop());
}

async function stream(link: Link, msg: Buffer, n: number): Promise<void> {
  const batch = new Array<Buffer>(BATCH).fill(msg);
  for (let sent = 0; sent < n; ) {
    const want = Math.min(BATCH, n - sent);
    const k = link.sendMany(want === BATCH ? batch : batch.slice(0, want));
    sent += k;
    if (k < want) {
      await link.send(msg); // full: wait for room for one, then batch again
      sent++;
    }
  }
  await link.receive(); // the acknowledgement
}

async function drain(link: Link, n: number): Promise<void> {
  for (let got = 0; got < n; ) {
    const k = link.receiveMany(Math.min(BATCH, n - got));
    got += k;
    if (k === 0) {
      await link.receive();
      got++;
    }
  }
  await link.send(ACK);
}

async function runDriver(ctx: DriverContext, link: Link, echoExited: Promise<void>): Promise<TrialResult> {
  const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
  const msg = payload(size);
  const rtt = new RttRecorder(warmup, count);
  await unlessExited(pingPong(link, msg, rtt), echoExited);
  await unlessExited(stream(link, msg, onewayWarmup), echoExited);
  const t0 = process.hrtime.bigint();
  await unlessExited(stream(link, msg, onewayCount), echoExited);
  const onewayNs = Number(process.hrtime.bigint() - t0);
  await echoExited;
  link.close();
  return { rttNs: rtt.samples, onewayNs };
}

async function runEcho(ctx: EchoContext, link: Link): Promise<void> {
  const { warmup, count, onewayWarmup, onewayCount } = ctx.params;
  for (let i = 0; i < warmup + count; i++) await link.send(await link.receive());
  await drain(link, onewayWarmup);
  await drain(link, onewayCount);
  link.close();
}

export const posixMq: BenchCase = {
  transport: 'posix-mq',
  unavailable: (size) => overLimit(size, '/proc/sys/fs/mqueue/msgsize_max'),
  description: 'POSIX message queues (mq_send/mq_receive), one per direction, capacity msg_max; waits on uv_poll; one-way batched (trySendMany/tryReceiveMany)',
  async driver(ctx) {
    const link = posixLink(ctx.params, true);
    const echo = ctx.startEcho();
    return runDriver(ctx, link, echo.exited);
  },
  async echo(ctx) {
    await runEcho(ctx, posixLink(ctx.params, false));
  },
};

export const sysvMq: BenchCase = {
  transport: 'sysv-mq',
  unavailable: (size) => overLimit(size, '/proc/sys/kernel/msgmax'),
  description: 'one System V message queue (msgsnd/msgrcv), type 1 out and type 2 back, capacity msgmnb; waits on waiter threads; one-way batched',
  async driver(ctx) {
    const q = sysv.get(sysvKey(ctx.params), { create: true, exclusive: true });
    // The peer exits on its own when the harness dies (no cleanup() then): remove the queue on the way out.
    const remove = () => {
      try {
        q.remove();
      } catch {
        /* already removed */
      }
    };
    process.once('exit', remove);
    const echo = ctx.startEcho();
    try {
      return await runDriver(ctx, sysvLink(q.id, true), echo.exited);
    } finally {
      remove();
    }
  },
  async echo(ctx) {
    await runEcho(ctx, sysvLink(sysv.get(sysvKey(ctx.params)).id, false));
  },
  cleanup(params) {
    try {
      sysv.get(sysvKey(params)).remove();
    } catch {
      /* removed by the driver, or never made */
    }
  },
};

/** A message larger than the queue family's system limit cannot be benchmarked here. */
function overLimit(size: number | undefined, limitPath: string): string | undefined {
  const { value } = readLimit(limitPath);
  return size !== undefined && typeof value === 'number' && size > value ? `messages over ${limitPath} = ${value} bytes` : undefined;
}
