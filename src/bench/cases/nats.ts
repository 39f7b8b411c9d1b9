// NATS cases: channel:nats (the Channel API over a nats:// URL),
// channel:jetstream (over a jetstream:// URL, the server with JetStream on) and the raw
// client it is built on, measured through the same server in the same run:
//   baseline:nats-request   round trip: the client's request() to a responder
//                           in the echo process (msg.respond); one way: publish()
//                           to a subject the echo subscribes to
//   baseline:nats-publish   round trip: publish() on two fixed subjects (ping,
//                           pong); one way as baseline:nats-request
// The raw one-way sender flushes (PING/PONG) every 1024 messages or every MiB,
// the cadence at which channel:nats awaits its send(): the client has no
// other backpressure, and without it its buffer (and the server's for a slow
// receiver) would grow with the burst.
// The driver starts its own nats-server (Debian package nats-server) on a free
// loopback port, or uses IPCKIT_BENCH_NATS=nats://host:port; the echo finds
// the server's address in the trial's private directory. Skipped, saying so,
// when nats-server or the client package (@nats-io/transport-node, an
// optional peer dependency of ipckit) is missing.
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { payload, RttRecorder, timeOneway, unlessExited } from '../kit.js';
import { freeLoopbackPort, spawnNatsServer } from '../nats-server.js';
import { loadPackage, packageUnavailable } from '../optional-package.js';
import type { BenchCase, DriverContext, EchoContext, TrialParams, TrialResult } from '../types.js';
import { makeCase, type Flavour } from './channel.js';

const PACKAGE = '@nats-io/transport-node';
const JETSTREAM_PACKAGE = '@nats-io/jetstream';
const NATS_ENV = 'IPCKIT_BENCH_NATS';
/** One-way runs long enough (20 × count messages) to get past the JIT's warm-up, the same for every NATS case. */
const ONEWAY_FACTOR = 20;

interface Msg {
  data: Uint8Array;
  respond(data?: Uint8Array): boolean;
}
interface Nc {
  publish(subject: string, data?: Uint8Array): void;
  subscribe(subject: string, options: { callback(error: Error | null, msg: Msg): void }): { unsubscribe(): void };
  request(subject: string, data: Uint8Array, options: { timeout: number }): Promise<Msg>;
  flush(): Promise<void>;
  close(): Promise<void>;
}
interface NatsClient {
  connect(options: { servers: string }): Promise<Nc>;
}

function hasNatsServer(): boolean {
  return spawnSync('nats-server', ['--version'], { stdio: 'ignore' }).status === 0;
}

function unavailable(): string | undefined {
  if (!process.env[NATS_ENV] && !hasNatsServer()) return `nats-server is not installed (Debian package nats-server), and ${NATS_ENV} names no server`;
  return packageUnavailable(PACKAGE);
}

const addressFile = (p: TrialParams) => join(p.workDir, 'nats-address');
/** host:port of the trial's server (written by the driver before the echo starts). */
const serverOf = (p: TrialParams) => readFileSync(addressFile(p), 'utf8');

/** The trial's server: IPCKIT_BENCH_NATS, or a nats-server of its own (`jetstream`: with JetStream on, its store in the trial's directory); returns how to stop it. */
async function startServer(p: TrialParams, jetstream = false): Promise<() => Promise<void>> {
  const given = process.env[NATS_ENV];
  if (given) {
    const u = new URL(given);
    writeFileSync(addressFile(p), `${u.hostname}:${u.port || 4222}`);
    return async () => {};
  }
  const port = await freeLoopbackPort();
  const { child, exited } = await spawnNatsServer(port, jetstream ? ['-js', '-sd', join(p.workDir, 'jetstream')] : []);
  writeFileSync(addressFile(p), `127.0.0.1:${port}`);
  return async () => {
    child.kill('SIGTERM');
    await exited;
  };
}

/** Runs a case's driver with the trial's server up, and stops it after. */
function withServer(c: BenchCase, jetstream = false): BenchCase {
  return {
    ...c,
    unavailable: jetstream ? () => unavailable() ?? packageUnavailable(JETSTREAM_PACKAGE) : unavailable,
    optionalPackage: PACKAGE,
    async driver(ctx) {
      const stop = await startServer(ctx.params, jetstream);
      try {
        return await c.driver(ctx);
      } finally {
        await stop();
      }
    },
  };
}

/** A channel:nats* or channel:jetstream case: a Channel over the trial's server, raw codec. */
function channelCase(f: Pick<Flavour, 'transport' | 'description' | 'batch'>, scheme: 'nats' | 'jetstream' = 'nats'): BenchCase {
  return withServer(
    makeCase({
      ...f,
      url: (p) => `${scheme}://${serverOf(p)}/${p.namePrefix.replace(/[^A-Za-z0-9_-]/g, '_')}`,
      options: {},
      zeroCopy: false,
      onewayFactor: scheme === 'jetstream' ? 1 : ONEWAY_FACTOR,
    }),
    scheme === 'jetstream',
  );
}

export const channelNats = channelCase({
  transport: 'channel:nats',
  description: 'Channel over nats:// (core NATS through a local nats-server: sequence numbers, credit flow control, probes), raw codec',
});

export const channelNatsBatch = channelCase({
  transport: 'channel:nats-batch',
  description: 'Channel over nats://, raw codec; one-way sent with sendBatch() and read with receiveBatch(), 256 messages a call; round trip as channel:nats',
  batch: 256,
});

/** Every message stored and acked by the server: one-way runs count messages, not 20 × count (about 10,000 a second here). */
export const channelJetStream = channelCase(
  {
    transport: 'channel:jetstream',
    description: 'Channel over jetstream:// (a JetStream stream per channel on a local nats-server with file storage: acked publishes, a push consumer per side, exactly once by sequence numbers), raw codec',
  },
  'jetstream',
);

const ACK = Buffer.from('k');

/** Messages between flushes of a raw one-way sender: 1024, or a MiB's worth (as channel:nats awaits its send()). */
const flushEvery = (size: number) => Math.max(1, Math.min(1024, Math.floor((1 << 20) / Math.max(1, size))));

function rawCase(transport: string, description: string, useRequest: boolean): BenchCase {
  async function driver(ctx: DriverContext): Promise<TrialResult> {
    const { size, warmup, count } = ctx.params;
    const client = await loadPackage<NatsClient>(PACKAGE);
    const nc = await client.connect({ servers: serverOf(ctx.params) });
    try {
      // Every reply (pong or acknowledgement) wakes the one waiter.
      let waiter: ((m: Msg) => void) | null = null;
      const next = () => new Promise<Msg>((resolve) => (waiter = resolve));
      nc.subscribe('bench.back', { callback: (_e, m) => waiter?.(m) });
      await nc.flush();
      const echo = ctx.startEcho();
      // The echo says it is subscribed.
      await unlessExited(next(), echo.exited);
      const msg = payload(size);
      const rtt = new RttRecorder(warmup, count);
      await unlessExited(
        (async () => {
          do {
            rtt.start();
            if (useRequest) await nc.request('bench.echo', msg, { timeout: 30_000 });
            else {
              const pong = next();
              nc.publish('bench.ping', msg);
              await pong;
            }
          } while (!rtt.stop());
        })(),
        echo.exited,
      );
      const every = flushEvery(size);
      const onewayNs = await timeOneway(
        async (n) => {
          const ack = next();
          for (let i = 0; i < n; i++) {
            nc.publish('bench.oneway', msg);
            if ((i + 1) % every === 0) await nc.flush();
          }
          await ack;
        },
        ctx.params,
        echo.exited,
      );
      nc.publish('bench.done');
      await nc.flush();
      await echo.exited;
      return { rttNs: rtt.samples, onewayNs };
    } finally {
      await nc.close();
    }
  }

  async function echo(ctx: EchoContext): Promise<void> {
    const { onewayWarmup, onewayCount } = ctx.params;
    const client = await loadPackage<NatsClient>(PACKAGE);
    const nc = await client.connect({ servers: serverOf(ctx.params) });
    let done!: () => void;
    const finished = new Promise<void>((resolve) => (done = resolve));
    nc.subscribe('bench.echo', { callback: (_e, m) => m.respond(m.data) });
    nc.subscribe('bench.ping', { callback: (_e, m) => nc.publish('bench.back', m.data) });
    const batches = [onewayWarmup, onewayCount];
    let got = 0;
    nc.subscribe('bench.oneway', {
      callback: () => {
        if (++got === batches[0]) {
          batches.shift();
          got = 0;
          nc.publish('bench.back', ACK);
        }
      },
    });
    nc.subscribe('bench.done', { callback: () => done() });
    await nc.flush();
    nc.publish('bench.back', ACK);
    await finished;
    await nc.close();
  }

  return withServer({ transport, description, onewayFactor: ONEWAY_FACTOR, driver, echo });
}

export const baselineNatsRequest = rawCase(
  'baseline:nats-request',
  "The raw NATS client (@nats-io/transport-node) through the same local nats-server: round trip request() to a responder in the echo process; one way publish(), a flush every 1024 messages or MiB",
  true,
);

export const baselineNatsPublish = rawCase(
  'baseline:nats-publish',
  'The raw NATS client: round trip publish() on two fixed subjects (ping, pong); one way publish(), a flush every 1024 messages or MiB',
  false,
);
