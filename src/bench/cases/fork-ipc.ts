// baseline:fork-json and baseline:fork-advanced: the IPC channel Node sets up
// for child_process.fork() (process.send / 'message'), with its two
// serializations. Each sends its natural payload of `size` bytes: a string of
// `size` ASCII characters for 'json', a Buffer of `size` bytes for
// 'advanced' (structured clone).
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { payload, RttRecorder, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialResult } from '../types.js';

type Serialization = 'json' | 'advanced';

const READY = 'ready';
const ACK = 'ack';

function message(serialization: Serialization, size: number): unknown {
  return serialization === 'json' ? 'x'.repeat(size) : payload(size);
}

/** Sends `n` messages, pausing while Node reports a backlog; resolves on the acknowledgement. */
function stream(child: ChildProcess, msg: unknown, n: number): Promise<void> {
  return new Promise((resolve, reject) => {
    let sent = 0;
    let written = 0;
    let blocked = false;
    // send() returns false once its write queue is long; there is no 'drain'
    // event, so count completions and resume when the queue has emptied.
    const onWritten = (err: Error | null) => {
      if (err) return reject(err);
      written++;
      if (blocked && written === sent) {
        blocked = false;
        pump();
      }
    };
    const pump = () => {
      while (sent < n) {
        sent++;
        if (!child.send(msg as never, onWritten)) {
          blocked = true;
          return;
        }
      }
    };
    child.once('message', (m) => (m === ACK ? resolve() : reject(new Error(`fork IPC: expected ${ACK}, got ${String(m)}`))));
    pump();
  });
}

function driverFor(serialization: Serialization) {
  return async (ctx: DriverContext): Promise<TrialResult> => {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    const echo = ctx.startEcho({ ipc: serialization });
    const child = echo.child;
    await unlessExited(once(child, 'message'), echo.exited);

    const msg = message(serialization, size);
    const rtt = new RttRecorder(warmup, count);
    await unlessExited(
      new Promise<void>((resolve) => {
        const onMessage = () => {
          if (rtt.stop()) {
            child.off('message', onMessage);
            resolve();
            return;
          }
          rtt.start();
          child.send(msg as never);
        };
        child.on('message', onMessage);
        rtt.start();
        child.send(msg as never);
      }),
      echo.exited,
    );

    await unlessExited(stream(child, msg, onewayWarmup), echo.exited);
    const t0 = process.hrtime.bigint();
    await unlessExited(stream(child, msg, onewayCount), echo.exited);
    const onewayNs = Number(process.hrtime.bigint() - t0);

    child.disconnect();
    await echo.exited;
    return { rttNs: rtt.samples, onewayNs };
  };
}

async function echo(ctx: EchoContext): Promise<void> {
  const { warmup, count, onewayWarmup, onewayCount } = ctx.params;
  const send = process.send?.bind(process);
  if (!send) throw new Error('fork IPC echo started without an IPC channel');
  let rounds = warmup + count;
  const batches = [onewayWarmup, onewayCount];
  let received = 0;
  process.on('message', (m) => {
    if (rounds > 0) {
      rounds--;
      send(m);
      return;
    }
    if (++received === batches[0]) {
      batches.shift();
      received = 0;
      send(ACK);
    }
  });
  send(READY);
  // The driver disconnects once it has everything.
  await once(process, 'disconnect');
}

export const forkJson: BenchCase = {
  transport: 'baseline:fork-json',
  description: "child_process IPC channel (process.send) with serialization 'json'; payload is a string of SIZE characters",
  driver: driverFor('json'),
  echo,
};

export const forkAdvanced: BenchCase = {
  transport: 'baseline:fork-advanced',
  description: "child_process IPC channel with serialization 'advanced' (structured clone); payload is a Buffer of SIZE bytes",
  driver: driverFor('advanced'),
  echo,
};
