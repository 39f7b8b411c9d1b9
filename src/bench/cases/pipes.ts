// Pipes, FIFOs and sockets: one generic byte-stream protocol and one
// generic message protocol, each run over several transports.
//
// Byte streams (pipe, fifo, socketpair-stream, unix-stream, tcp): as in
// net-unix.ts, the echo sends each ping back whole; the one-way batches are
// counted in bytes and acknowledged with one byte.
// Messages (socketpair-seqpacket, unix-seqpacket, unix-dgram): every ping is
// one message and comes back as one; the one-way batches are counted in
// messages and acknowledged with a one-byte message. Message sizes are limited
// by the socket buffer (about 208 KiB by default; bigger sizes fail EMSGSIZE).
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { FdStream, fifo, socketpair, tcp, unix, type MessageSocket } from '../../index.js';
import { pipe } from '../../pipes/pipe.js';
import { payload, RttRecorder, streamPingPong, timeOneway, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, EchoHandle, TrialResult } from '../types.js';

const ACK = Buffer.from('k');

interface Ends {
  input: Readable;
  output: Writable;
  close(): void;
}

/** Writes `n` copies of `msg` with backpressure; resolves on the one-byte acknowledgement. */
function streamBatch(ends: Ends, msg: Buffer, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    const pump = () => {
      while (sent < n) {
        sent++;
        if (!ends.output.write(msg)) {
          ends.output.once('drain', pump);
          return;
        }
      }
    };
    ends.input.once('data', (chunk: Buffer) => (chunk.length === 1 ? resolve() : reject(new Error('bad acknowledgement'))));
    pump();
  });
}

async function streamDriver(ctx: DriverContext, ends: Ends, echo: EchoHandle): Promise<TrialResult> {
  const { size, warmup, count } = ctx.params;
  const msg = payload(size);
  const rtt = new RttRecorder(warmup, count);
  await unlessExited(streamPingPong(ends.input, ends.output, msg, rtt), echo.exited);
  const onewayNs = await timeOneway((n) => streamBatch(ends, msg, n), ctx.params, echo.exited);
  ends.output.end();
  await echo.exited;
  ends.close();
  return { rttNs: rtt.samples, onewayNs };
}

async function streamEcho(ctx: EchoContext, ends: Ends): Promise<void> {
  const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
  let rounds = warmup + count;
  const batches = [onewayWarmup * size, onewayCount * size];
  let parts: Buffer[] = [];
  let pending = 0;
  let received = 0;
  const ended = once(ends.input, 'end');
  ends.input.on('data', (chunk: Buffer) => {
    if (rounds > 0) {
      parts.push(chunk);
      pending += chunk.length;
      if (pending < size) return;
      ends.output.write(parts.length === 1 ? parts[0] : Buffer.concat(parts));
      parts = [];
      pending = 0;
      rounds--;
      return;
    }
    received += chunk.length;
    while (batches.length > 0 && received >= batches[0]!) {
      received -= batches.shift()!;
      ends.output.write(ACK);
    }
  });
  await ended;
  await new Promise<void>((resolve) => ends.output.end(resolve));
  ends.close();
}

const duplex = (s: import('node:net').Socket): Ends => ({ input: s, output: s, close: () => s.destroy() });

function streamCase(transport: string, description: string, setup: {
  driver(ctx: DriverContext): Promise<{ ends: Ends; echo: EchoHandle }>;
  echo(ctx: EchoContext): Promise<Ends>;
}): BenchCase {
  return {
    transport,
    description,
    async driver(ctx) {
      const { ends, echo } = await setup.driver(ctx);
      return streamDriver(ctx, ends, echo);
    },
    async echo(ctx) {
      await streamEcho(ctx, await setup.echo(ctx));
    },
  };
}

const pipeCase = streamCase('pipe', 'two anonymous pipes (pipe2), one per direction, passed to the echo as fds 3 and 4; net.Socket over each end', {
  async driver(ctx) {
    const [toEchoR, toEchoW] = pipe();
    const [fromEchoR, fromEchoW] = pipe();
    const echo = ctx.startEcho({ fds: [toEchoR.fd, fromEchoW.fd] });
    toEchoR.destroy();
    fromEchoW.destroy();
    return { ends: { input: fromEchoR, output: toEchoW, close: () => (fromEchoR.destroy(), toEchoW.destroy()) }, echo };
  },
  async echo() {
    const input = new FdStream(3, { readable: true, writable: false });
    const output = new FdStream(4, { readable: false, writable: true });
    return { input, output, close: () => (input.destroy(), output.destroy()) };
  },
});

const fifoPaths = (workDir: string) => [join(workDir, 'to-echo.fifo'), join(workDir, 'from-echo.fifo')] as const;

const fifoCase = streamCase('fifo', 'two named pipes (mkfifo) in the trial directory, opened with fifo.open (each side waits for the other)', {
  async driver(ctx) {
    const [to, from] = fifoPaths(ctx.params.workDir);
    fifo.create(to);
    fifo.create(from);
    const echo = ctx.startEcho();
    const [output, input] = await unlessExited(Promise.all([fifo.open(to, 'w'), fifo.open(from, 'r')]), echo.exited);
    return { ends: { input, output, close: () => (input.destroy(), output.destroy()) }, echo };
  },
  async echo(ctx) {
    const [to, from] = fifoPaths(ctx.params.workDir);
    const [input, output] = await Promise.all([fifo.open(to, 'r'), fifo.open(from, 'w')]);
    return { input, output, close: () => (input.destroy(), output.destroy()) };
  },
});

const socketpairStream = streamCase('socketpair-stream', 'socketpair(SOCK_STREAM), the echo gets its end as fd 3 (unix.fromFd); net.Socket both sides', {
  async driver(ctx) {
    const [a, b] = socketpair();
    const echo = ctx.startEcho({ fds: [b.fd] });
    b.destroy();
    return { ends: duplex(a), echo };
  },
  async echo() {
    return duplex(unix.fromFd(3) as import('node:net').Socket);
  },
});

const unixPath = (workDir: string, tag: string) => join(workDir, `${tag}.sock`);

const unixStream = streamCase('unix-stream', 'unix.listen/unix.connect over a socket file (SOCK_STREAM): UnixServer (net.Server) and UnixStream', {
  async driver(ctx) {
    const server = await unix.listen(unixPath(ctx.params.workDir, 'stream'));
    const echo = ctx.startEcho();
    const [sock] = (await unlessExited(once(server, 'connection'), echo.exited)) as [import('node:net').Socket];
    server.close();
    return { ends: duplex(sock), echo };
  },
  async echo(ctx) {
    return duplex(await unix.connect(unixPath(ctx.params.workDir, 'stream')));
  },
});

const tcpCase = streamCase('tcp', 'tcp.listen/tcp.connect on 127.0.0.1 (TCP_NODELAY)', {
  async driver(ctx) {
    const server = await tcp.listen(0);
    writeFileSync(join(ctx.params.workDir, 'tcp.port'), String((server.address() as { port: number }).port));
    const echo = ctx.startEcho();
    const [sock] = (await unlessExited(once(server, 'connection'), echo.exited)) as [import('node:net').Socket];
    sock.setNoDelay(true);
    server.close();
    return { ends: duplex(sock), echo };
  },
  async echo(ctx) {
    return duplex(await tcp.connect(Number(readFileSync(join(ctx.params.workDir, 'tcp.port'), 'utf8'))));
  },
});

// ---- message sockets ----

async function messageDriver(ctx: DriverContext, sock: MessageSocket, echo: EchoHandle): Promise<TrialResult> {
  const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
  const msg = payload(size);
  const rtt = new RttRecorder(warmup, count);
  await unlessExited(
    new Promise<void>((resolve, reject) => {
      const onMessage = () => {
        if (rtt.stop()) {
          sock.off('message', onMessage);
          resolve();
          return;
        }
        rtt.start();
        sock.send(msg).catch(reject);
      };
      sock.on('message', onMessage);
      rtt.start();
      sock.send(msg).catch(reject);
    }),
    echo.exited,
  );
  const batch = async (n: number) => {
    const acked = once(sock, 'message');
    for (let i = 0; i < n; i++) await sock.send(msg);
    await acked;
  };
  await unlessExited(batch(onewayWarmup), echo.exited);
  const t0 = process.hrtime.bigint();
  await unlessExited(batch(onewayCount), echo.exited);
  const onewayNs = Number(process.hrtime.bigint() - t0);
  sock.close();
  await echo.exited;
  return { rttNs: rtt.samples, onewayNs };
}

async function messageEcho(ctx: EchoContext, sock: MessageSocket): Promise<void> {
  const { warmup, count, onewayWarmup, onewayCount } = ctx.params;
  let rounds = warmup + count;
  const batches = [onewayWarmup, onewayCount];
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    sock.on('message', (data: Buffer) => {
      if (rounds > 0) {
        rounds--;
        sock.send(data).catch(reject);
        return;
      }
      if (++received === batches[0]) {
        batches.shift();
        received = 0;
        sock.send(ACK).then(() => batches.length === 0 && resolve(), reject);
      }
    });
  });
  // All counts are known: after the last acknowledgement the driver needs nothing more.
  sock.close();
}

function messageCase(transport: string, description: string, setup: {
  driver(ctx: DriverContext): Promise<{ sock: MessageSocket; echo: EchoHandle }>;
  echo(ctx: EchoContext): Promise<MessageSocket>;
}): BenchCase {
  return {
    transport,
    description,
    async driver(ctx) {
      const { sock, echo } = await setup.driver(ctx);
      return messageDriver(ctx, sock, echo);
    },
    async echo(ctx) {
      await messageEcho(ctx, await setup.echo(ctx));
    },
  };
}

const socketpairSeqpacket = messageCase('socketpair-seqpacket', 'socketpair(SOCK_SEQPACKET): one message per sendmsg/recvmsg, uv_poll watcher; echo end as fd 3', {
  async driver(ctx) {
    const [a, b] = socketpair({ type: 'seqpacket' });
    const echo = ctx.startEcho({ fds: [b.fd] });
    b.close();
    return { sock: a, echo };
  },
  async echo() {
    return unix.fromFd(3) as MessageSocket;
  },
});

const unixSeqpacket = messageCase('unix-seqpacket', 'unix.listen/unix.connect with type seqpacket over a socket file (MessageServer, MessageSocket)', {
  async driver(ctx) {
    const server = await unix.listen(unixPath(ctx.params.workDir, 'seqpacket'), { type: 'seqpacket' });
    const echo = ctx.startEcho();
    const [sock] = (await unlessExited(once(server, 'connection'), echo.exited)) as [MessageSocket];
    server.close();
    return { sock, echo };
  },
  async echo(ctx) {
    return unix.connect(unixPath(ctx.params.workDir, 'seqpacket'), { type: 'seqpacket' });
  },
});

const unixDgram = messageCase('unix-dgram', 'two bound SOCK_DGRAM sockets connected to each other (socket files); sender addresses on every datagram', {
  async driver(ctx) {
    const here = unixPath(ctx.params.workDir, 'dgram-driver');
    const there = unixPath(ctx.params.workDir, 'dgram-echo');
    const sock = unix.dgram({ bind: here });
    const echo = ctx.startEcho();
    // The echo binds its address and says hello; only then can we connect to it.
    await unlessExited(once(sock, 'message'), echo.exited);
    sock.connect(there);
    return { sock, echo };
  },
  async echo(ctx) {
    const sock = await unix.connect(unixPath(ctx.params.workDir, 'dgram-driver'), { type: 'dgram', bind: unixPath(ctx.params.workDir, 'dgram-echo') });
    await sock.send('hello');
    return sock;
  },
});

export const PIPE_CASES: readonly BenchCase[] = [pipeCase, fifoCase, socketpairStream, unixStream, socketpairSeqpacket, unixSeqpacket, unixDgram, tcpCase];
