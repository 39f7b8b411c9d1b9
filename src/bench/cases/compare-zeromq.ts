// compare:zeromq-ipc: what a user who picks ZeroMQ instead of ipckit gets
// between two local processes: zeromq.js v6 (libzmq through its bundled
// addon), a Pair socket over an `ipc://` endpoint (a Unix socket file in the
// trial's private directory). Pair is the one pattern with exactly one peer
// that both sends and receives freely, so one socket carries the ping-pong
// and the one-way stream; every call is `await send()` / `await receive()`,
// as the zeromq.js docs use them. Not a dependency of ipckit: loaded with
// import() when installed (optional-package.ts), skipped otherwise.
import { join } from 'node:path';
import { payload, RttRecorder, timeOneway, unlessExited } from '../kit.js';
import { loadPackage, packageUnavailable } from '../optional-package.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

const PACKAGE = 'zeromq';
const ACK = Buffer.from('k');
const DONE = Buffer.from('d');

/** The part of zeromq.js v6 used here (its own types are not needed to build ipckit). */
interface PairSocket {
  bind(address: string): Promise<void>;
  connect(address: string): void;
  send(message: Buffer): Promise<void>;
  receive(): Promise<Buffer[]>;
  close(): void;
}

interface ZeroMq {
  Pair: new (options?: { linger?: number }) => PairSocket;
}

function endpoint(workDir: string): string {
  return `ipc://${join(workDir, 'zeromq.sock')}`;
}

/** One message, checked for the size both sides agreed on. */
async function receiveSized(sock: PairSocket, size: number): Promise<Buffer> {
  const [msg] = await sock.receive();
  if (msg.length !== size) throw new Error(`zeromq: received ${msg.length} bytes, expected ${size}`);
  return msg;
}

/** Sends `n` copies of `msg` (send() waits while the high-water mark is reached); resolves on the acknowledgement. */
async function stream(sock: PairSocket, msg: Buffer, n: number): Promise<void> {
  for (let i = 0; i < n; i++) await sock.send(msg);
  await receiveSized(sock, ACK.length);
}

async function driver(ctx: DriverContext): Promise<TrialResult> {
  const { size, warmup, count, workDir } = ctx.params;
  const zmq = await loadPackage<ZeroMq>(PACKAGE);
  const sock = new zmq.Pair({ linger: 0 });
  try {
    await sock.bind(endpoint(workDir));
    const echo = ctx.startEcho();

    const msg = payload(size);
    const rtt = new RttRecorder(warmup, count);
    await unlessExited(
      (async () => {
        // A Pair queues sends until its peer connects, so the first ping waits for the echo.
        do {
          rtt.start();
          await sock.send(msg);
          await receiveSized(sock, size);
        } while (!rtt.stop());
      })(),
      echo.exited,
    );

    const onewayNs = await timeOneway((n) => stream(sock, msg, n), ctx.params, echo.exited);

    // A Pair reports no disconnection to receive(): tell the echo it may go.
    await sock.send(DONE);
    await echo.exited;
    return { rttNs: rtt.samples, onewayNs };
  } finally {
    sock.close();
  }
}

async function echo(ctx: EchoContext): Promise<void> {
  const { size, warmup, count, onewayWarmup, onewayCount, workDir } = ctx.params;
  const zmq = await loadPackage<ZeroMq>(PACKAGE);
  const sock = new zmq.Pair({ linger: 0 });
  try {
    sock.connect(endpoint(workDir));
    for (let rounds = warmup + count; rounds > 0; rounds--) await sock.send(await receiveSized(sock, size));
    for (const n of [onewayWarmup, onewayCount]) {
      for (let i = 0; i < n; i++) await receiveSized(sock, size);
      await sock.send(ACK);
    }
    await receiveSized(sock, DONE.length);
  } finally {
    sock.close();
  }
}

export const compareZeromq: BenchCase = {
  transport: 'compare:zeromq-ipc',
  description: 'zeromq.js v6 Pair socket over ipc:// (a Unix socket), await send()/receive() per message; needs `npm install zeromq`',
  optionalPackage: PACKAGE,
  unavailable: () => packageUnavailable(PACKAGE),
  driver,
  echo,
};
