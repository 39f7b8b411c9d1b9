// baseline:net-unix: what Node gives you out of the box for two local
// processes, a `net` stream over a Unix domain socket (epoll, event loop).
// The socket file lives in the trial's private directory, which the harness
// removes.
import { once } from 'node:events';
import { createConnection, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { payload, RttRecorder, streamPingPong, timeOneway, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

const ACK = Buffer.from('k');

function socketPath(workDir: string): string {
  return join(workDir, 'net-unix.sock');
}

/** Writes `n` copies of `msg`, honouring backpressure; resolves on the one-byte acknowledgement. */
function stream(sock: Socket, msg: Buffer, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        sent++;
        if (!sock.write(msg)) {
          sock.once('drain', pump);
          return;
        }
      }
    };
    sock.once('data', (chunk: Buffer) => (chunk.length === 1 ? resolve() : reject(new Error('net-unix: bad acknowledgement'))));
    pump();
  });
}

async function driver(ctx: DriverContext): Promise<TrialResult> {
  const { size, warmup, count, workDir } = ctx.params;
  const server = createServer();
  server.listen(socketPath(workDir));
  await once(server, 'listening');
  const echo = ctx.startEcho();
  const [sock] = (await unlessExited(once(server, 'connection'), echo.exited)) as [Socket];
  server.close();

  const msg = payload(size);
  const rtt = new RttRecorder(warmup, count);
  await unlessExited(streamPingPong(sock, sock, msg, rtt), echo.exited);

  const onewayNs = await timeOneway((n) => stream(sock, msg, n), ctx.params, echo.exited);

  sock.end();
  await echo.exited;
  return { rttNs: rtt.samples, onewayNs };
}

async function echo(ctx: EchoContext): Promise<void> {
  const { size, warmup, count, onewayWarmup, onewayCount, workDir } = ctx.params;
  const sock = createConnection(socketPath(workDir));
  await once(sock, 'connect');
  let rounds = warmup + count;
  const batches = [onewayWarmup * size, onewayCount * size];
  let parts: Buffer[] = [];
  let pending = 0;
  let received = 0;
  sock.on('data', (chunk: Buffer) => {
    if (rounds > 0) {
      // Ping-pong: the driver sends the next ping only after this pong, so a
      // chunk never holds more than one message.
      parts.push(chunk);
      pending += chunk.length;
      if (pending < size) return;
      sock.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      parts = [];
      pending = 0;
      rounds--;
      return;
    }
    received += chunk.length;
    if (received === batches[0]) {
      batches.shift();
      received = 0;
      sock.write(ACK);
    }
  });
  // The driver closes its end once it has everything; exiting earlier could
  // race its last acknowledgement.
  sock.resume();
  await once(sock, 'end');
  sock.end();
}

export const netUnix: BenchCase = {
  transport: 'baseline:net-unix',
  description: "Node's net module over a Unix domain stream socket (epoll through the event loop); one-way with write() backpressure",
  driver,
  echo,
};
