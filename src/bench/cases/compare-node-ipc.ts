// compare:node-ipc: what a user who picks node-ipc instead of ipckit gets:
// its Unix-socket server (the driver, ipc.serve + ipc.server.emit) and client
// (the echo, ipc.connectTo + ipc.of[id].emit), exchanging named events whose
// data is a string of `size` ASCII characters (node-ipc sends JSON text
// delimited by '\f', so a string is its natural payload, as for
// baseline:fork-json). Its receiver appends each chunk read to a string and
// parses only when a chunk ends on a delimiter; until one does it re-reads the
// whole string per chunk, so a burst of messages that outruns the reader costs
// time quadratic in its length (64 KiB messages: 145 msg/s for a burst of
// 100, 15 msg/s for 400). The one-way phase is therefore capped at
// ONEWAY_MAX_BYTES, and its figure holds for bursts of that length only.
// One-way waits for 'drain' on the net.Socket node-ipc
// writes to (its emit() ignores backpressure), like baseline:net-unix. Not a
// dependency of ipckit: loaded with import() when installed, skipped otherwise.
// Written against node-ipc 9.2.1, the release pinned in package.json.
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { RttRecorder, timeOneway, unlessExited } from '../kit.js';
import { loadPackage, packageUnavailable } from '../optional-package.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

const PACKAGE = 'node-ipc';
const SERVER_ID = 'ipckit-bench';
/** 4 MiB per one-way phase: 65,536 messages of 64 B, 64 of 64 KiB, 4 of 1 MiB. */
const ONEWAY_MAX_BYTES = 4 * 2 ** 20;

type Handler = (data: unknown, socket: Socket) => void;

/** The part of node-ipc 9 used here (it ships no types). */
interface NodeIpc {
  config: Record<string, unknown>;
  serve(path: string, onStart: () => void): void;
  server: {
    start(): void;
    stop(): void;
    on(event: string, handler: Handler): void;
    emit(socket: Socket, event: string, data: unknown): void;
  };
  connectTo(id: string, path: string): void;
  of: Record<string, { on(event: string, handler: Handler): void; emit(event: string, data: unknown): void }>;
}

async function load(id: string): Promise<NodeIpc> {
  const ipc = await loadPackage<NodeIpc>(PACKAGE);
  // silent: node-ipc logs every event to the console by default.
  // stopRetrying: the echo ends when the driver hangs up, instead of reconnecting every 500 ms.
  Object.assign(ipc.config, { id, silent: true, stopRetrying: true });
  return ipc;
}

function socketPath(workDir: string): string {
  return join(workDir, 'node-ipc.sock');
}

function checked(data: unknown, size: number): string {
  if (typeof data !== 'string' || data.length !== size) throw new Error(`node-ipc: expected a string of ${size} characters`);
  return data;
}

async function driver(ctx: DriverContext): Promise<TrialResult> {
  const { size, warmup, count, workDir } = ctx.params;
  const ipc = await load(SERVER_ID);
  await new Promise<void>((resolve) => {
    ipc.serve(socketPath(workDir), resolve);
    ipc.server.start();
  });
  const echo = ctx.startEcho();
  const sock = await unlessExited(new Promise<Socket>((resolve) => ipc.server.on('connect', (s) => resolve(s as unknown as Socket))), echo.exited);
  ipc.server.stop(); // no more connections; this one stays open

  // One handler per event for the whole trial; each phase swaps in its own continuation.
  let onPong: (data: unknown) => void = () => {};
  let onAck: () => void = () => {};
  ipc.server.on('pong', (data) => onPong(data));
  ipc.server.on('ack', () => onAck());

  const msg = 'x'.repeat(size);
  const rtt = new RttRecorder(warmup, count);
  await unlessExited(
    new Promise<void>((resolve, reject) => {
      onPong = (data) => {
        try {
          checked(data, size);
        } catch (e) {
          reject(e);
          return;
        }
        if (rtt.stop()) return resolve();
        rtt.start();
        ipc.server.emit(sock, 'ping', msg);
      };
      rtt.start();
      ipc.server.emit(sock, 'ping', msg);
    }),
    echo.exited,
  );

  const stream = (n: number) =>
    new Promise<void>((resolve) => {
      onAck = resolve;
      let sent = 0;
      const pump = () => {
        while (sent < n) {
          sent++;
          ipc.server.emit(sock, 'msg', msg);
          if (sock.writableNeedDrain) {
            sock.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
  const onewayNs = await timeOneway(stream, ctx.params, echo.exited);

  sock.end();
  await echo.exited;
  return { rttNs: rtt.samples, onewayNs };
}

async function echo(ctx: EchoContext): Promise<void> {
  const { size, warmup, count, onewayWarmup, onewayCount, workDir } = ctx.params;
  const ipc = await load('ipckit-bench-echo');
  ipc.connectTo(SERVER_ID, socketPath(workDir));
  const server = ipc.of[SERVER_ID];
  let rounds = warmup + count;
  const batches = [onewayWarmup, onewayCount];
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    server.on('ping', (data) => {
      rounds--;
      server.emit('pong', data);
    });
    server.on('msg', (data) => {
      try {
        checked(data, size);
      } catch (e) {
        reject(e);
        return;
      }
      if (rounds > 0) return reject(new Error('node-ipc: one-way message during the round trips'));
      if (++received === batches[0]) {
        batches.shift();
        received = 0;
        server.emit('ack', true);
      }
    });
    // The driver hangs up once it has everything; exiting earlier could race its last acknowledgement.
    server.on('disconnect', () => (batches.length === 0 ? resolve() : reject(new Error('node-ipc: the driver hung up early'))));
  });
}

export const compareNodeIpc: BenchCase = {
  transport: 'compare:node-ipc',
  description: 'node-ipc 9 Unix-socket server and client, JSON events with a string of SIZE characters; needs `npm install node-ipc@9.2.1`',
  optionalPackage: PACKAGE,
  onewayMaxBytes: ONEWAY_MAX_BYTES,
  unavailable: () => packageUnavailable(PACKAGE),
  driver,
  echo,
};
