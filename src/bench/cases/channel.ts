// channel:* cases: the Channel API (src/channel.ts) over its transports, with
// the raw codec so the figures show transport + framing cost, not JSON.
//   channel:shm            shm: rings, spin 'auto' (spin 50 µs, yielding between slices, then doorbell)
//   channel:shm-nospin     shm: rings, spin:false (every wait is a doorbell wake-up)
//   channel:shm-batch      shm:, one-way with sendBatch()/receiveBatch() (256 per call); round trip as channel:shm
//   channel:shm-each       shm:, one-way sent with sendBatch() (256 prebuilt messages a call, each
//                          stamped with its sequence number) and read with receiveEach({ inPlace }):
//                          the receiver reads every message's sequence number in the ring
//                          itself and checks it, no object per message anywhere
//   channel:shm-zerocopy   shm:, loan()/publish() to send, zeroCopy views received and released:
//                          the payload is produced in place (an 8-byte stamp is written, the
//                          rest of the loaned bytes are not touched), so nothing is copied
//                          anywhere and the size should not change the round trip
//   channel:unix           unix: stream socket with length-prefixed frames
//   channel:shm-json, channel:unix-json   the json codec with a string of `size`
//                          characters, as baseline:fork-json sends
// The driver listens, the echo connects; the shm: rendezvous is an abstract
// socket and the rings live in a memfd, so nothing can be left behind.
import { join } from 'node:path';
import { channel, type Channel, type ChannelOptions, type ChannelListenOptions as ListenOptions } from '../../index.js';
import { payload, RttRecorder, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialParams, TrialResult } from '../types.js';

type View = Uint8Array & { release?: () => void };

interface Flavour {
  transport: string;
  description: string;
  url(params: TrialParams): string;
  options: ChannelOptions<Uint8Array>;
  zeroCopy: boolean;
  onewayFactor?: number;
  json?: boolean;
  sizeIndependent?: boolean;
  /** One-way phase with sendBatch()/receiveBatch() of this many messages per call. */
  batch?: number;
  /** Read the one-way phase with receiveEach({ inPlace: true }), checking every message's sequence number. */
  each?: boolean;
  /** The driver's listen() only (the echo side connects). */
  listen?: ListenOptions<Uint8Array>;
}

function opts(f: Flavour, size: number): ChannelOptions<Uint8Array> {
  return { codec: f.json ? 'json' : 'raw', maxMessageSize: Math.max(size + 16, 1024), ...f.options };
}

async function sendOne(ch: Channel<Uint8Array>, msg: Uint8Array, zeroCopy: boolean): Promise<void> {
  if (!zeroCopy) return ch.send(msg);
  // Zero-copy: the message is made where it travels; a real producer fills
  // the loaned view itself, so copying `msg` in would measure a memcpy.
  const view = await ch.loan(msg.byteLength);
  stamp(view, msg);
  return ch.publish(view);
}

/** The first (up to) 8 bytes of `from` into `view`. */
function stamp(view: Uint8Array, from: Uint8Array): void {
  for (let i = 0; i < 8 && i < view.byteLength; i++) view[i] = from[i]!;
}

async function receive(ch: Channel<Uint8Array>): Promise<View> {
  const r = await ch.next();
  if (r.done) throw new Error('channel closed early');
  return r.value as View;
}

/** Message `seq` of a one-way run read by receiveEach(): its number in its first 4 bytes (when it has them). */
function writeSeq(m: Uint8Array, seq: number): void {
  if (m.byteLength >= 4) (m as Buffer).writeUInt32LE(seq, 0);
}

/** Reads `n` messages in place, checking that each carries the next sequence number (when it has 4 bytes). */
async function receiveEvery(ch: Channel<Uint8Array>, n: number): Promise<void> {
  let got = 0;
  let wrong = -1;
  const check = (bytes: Buffer, start: number, end: number) => {
    if (end - start >= 4 && bytes.readUInt32LE(start) !== got && wrong < 0) wrong = got;
    got++;
  };
  while (got < n) {
    if ((await ch.receiveEach(check, { inPlace: true, max: n - got })) === 0) throw new Error(`channel ended after ${got} of ${n}`);
  }
  if (wrong >= 0) throw new Error(`message ${wrong} arrived out of order`);
}

function makeCase(f: Flavour): BenchCase {
  async function driver(ctx: DriverContext): Promise<TrialResult> {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    const server = await channel.listen<Uint8Array>(f.url(ctx.params), { ...opts(f, size), ...f.listen });
    const echo = ctx.startEcho();
    const first = await unlessExited(server[Symbol.asyncIterator]().next(), echo.exited);
    await server.close();
    const ch = first.value as Channel<Uint8Array>;
    const msg = (f.json ? 'x'.repeat(size) : payload(size)) as unknown as Uint8Array;
    const rtt = new RttRecorder(warmup, count);
    await unlessExited(
      (async () => {
        do {
          rtt.start();
          await sendOne(ch, msg, f.zeroCopy);
          (await receive(ch)).release?.();
        } while (!rtt.stop());
      })(),
      echo.exited,
    );
    // Messages that carry their sequence number each need bytes of their own.
    const many = f.batch ? Array.from({ length: f.batch }, () => (f.each ? Buffer.from(msg) : msg)) : [];
    const batch = async (n: number) => {
      let last: Promise<void> = Promise.resolve();
      if (f.batch) {
        for (let i = 0; i < n; i += f.batch) {
          const run = i + f.batch <= n ? many : many.slice(0, n - i);
          if (f.each) for (let k = 0; k < run.length; k++) writeSeq(run[k]!, i + k);
          await ch.sendBatch(run);
        }
        (await receive(ch)).release?.();
        return;
      }
      for (let i = 0; i < n; i++) {
        last = sendOne(ch, msg, f.zeroCopy);
        // Await now and then: enough to follow backpressure without a promise per message.
        if (f.zeroCopy || (i & 1023) === 1023) await last;
      }
      await last;
      (await receive(ch)).release?.();
    };
    await unlessExited(batch(onewayWarmup), echo.exited);
    const t0 = process.hrtime.bigint();
    await unlessExited(batch(onewayCount), echo.exited);
    const onewayNs = Number(process.hrtime.bigint() - t0);
    await ch.close();
    await echo.exited;
    return { rttNs: rtt.samples, onewayNs };
  }

  async function echo(ctx: EchoContext): Promise<void> {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    const ch = await channel.connect<Uint8Array>(f.url(ctx.params), opts(f, size));
    for (let i = 0; i < warmup + count; i++) {
      const m = await receive(ch);
      await sendOne(ch, m, f.zeroCopy);
      m.release?.();
    }
    for (const n of [onewayWarmup, onewayCount]) {
      if (f.each) await receiveEvery(ch, n);
      else if (f.batch) for (let got = 0; got < n; ) got += (await ch.receiveBatch(Math.min(n - got, 1024))).length;
      else for (let i = 0; i < n; i++) (await receive(ch)).release?.();
      await ch.send((f.json ? 'k' : Buffer.from('k')) as unknown as Uint8Array);
    }
    // The driver closes once it has the last acknowledgement.
    while (!(await ch.next()).done);
    await ch.close();
  }

  return {
    transport: f.transport,
    description: f.description,
    ...(f.onewayFactor ? { onewayFactor: f.onewayFactor } : {}),
    ...(f.sizeIndependent ? { sizeIndependent: true } : {}),
    driver,
    echo,
  };
}

const shmUrl = (p: TrialParams) => `shm:${p.namePrefix}-ch`;

export const channelShm = makeCase({
  transport: 'channel:shm',
  description: "Channel over shm: (SPSC rings in a memfd), raw codec, spin 'auto' then a doorbell byte on the control socket (uv_poll)",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  // Enough one-way messages to cycle the 4 MiB ring many times past the JIT warm-up.
  onewayFactor: 20,
});

export const channelShmNoSpin = makeCase({
  transport: 'channel:shm-nospin',
  description: 'Channel over shm:, spin:false: every wait sleeps on the doorbell (a byte on the control socket, watched by uv_poll)',
  url: shmUrl,
  options: { spin: false },
  zeroCopy: false,
  onewayFactor: 4,
});

export const channelShmShared = makeCase({
  transport: 'channel:shm-shared',
  description: "Channel over shm: to a listener with a shared ring (sharedRing: the connector's frames go through the MPSC ring and its lock), raw codec, spin 'auto'",
  url: shmUrl,
  options: { spin: 'auto' },
  listen: { sharedRing: true },
  zeroCopy: false,
  onewayFactor: 20,
});

export const channelShmBatch = makeCase({
  transport: 'channel:shm-batch',
  description: "Channel over shm:, raw codec, spin 'auto'; one-way sent with sendBatch() and read with receiveBatch(), 256 messages a call",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  onewayFactor: 40,
  batch: 256,
});

export const channelShmEach = makeCase({
  transport: 'channel:shm-each',
  description:
    "Channel over shm:, raw codec, spin 'auto'; one-way sent with sendBatch() (256 a call, each stamped with its sequence number) and read in place with receiveEach({ inPlace: true }), every sequence number checked",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  onewayFactor: 40,
  batch: 256,
  each: true,
});

export const channelShmZeroCopy = makeCase({
  transport: 'channel:shm-zerocopy',
  description: 'Channel over shm:, loan()/publish() in place (8-byte stamp, nothing copied), received as ring views released after use',
  url: shmUrl,
  options: { spin: 'auto', zeroCopy: true },
  zeroCopy: true,
  sizeIndependent: true,
});

export const channelUnix = makeCase({
  transport: 'channel:unix',
  description: 'Channel over unix: (net stream socket, u32 length prefix per frame), raw codec',
  url: (p) => `unix:${join(p.workDir, 'channel.sock')}`,
  options: {},
  zeroCopy: false,
});

export const channelShmJson = makeCase({
  transport: 'channel:shm-json',
  description: "Channel over shm:, json codec, a string of `size` characters (compare baseline:fork-json)",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  json: true,
  onewayFactor: 4,
});

export const channelUnixJson = makeCase({
  transport: 'channel:unix-json',
  description: 'Channel over unix:, json codec, a string of `size` characters (compare baseline:fork-json)',
  url: (p) => `unix:${join(p.workDir, 'channel.sock')}`,
  options: {},
  zeroCopy: false,
  json: true,
  onewayFactor: 4,
});
