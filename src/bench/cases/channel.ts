// channel:* cases: the Channel API (src/channel/index.ts) over its transports, with
// the raw codec so the figures show transport + framing cost, not JSON.
//   channel:shm            shm: rings, spin 'auto' (spin 50 µs, yielding between slices, then doorbell)
//   channel:shm-nospin     shm: rings, spin:false (every wait is a doorbell wake-up)
//   channel:shm-batch      shm:, one-way with sendBatch()/receiveBatch() (256 per call); round trip as channel:shm
//   channel:shm-each       shm:, one-way sent with sendBatch() (256 prebuilt messages a call, each
//                          stamped with its sequence number) and read with receiveEach({ inPlace }):
//                          the receiver reads every message's sequence number in the ring
//                          itself and checks it, no object per message anywhere
//   channel:shm-each-copy  as channel:shm-each, but every message is first copied out of the
//                          ring into one Buffer (every byte read, as C's consumer does)
//   channel:shm-zerocopy   shm:, loan()/publish() to send, zeroCopy views received and released:
//                          the producer writes every byte of each loaned view (the payload,
//                          its first word + the message's number) and the consumer reads every
//                          byte of each received view (checksum()); both sides check the sums,
//                          so a trial whose bytes did not arrive intact fails
//   channel:unix           unix: stream socket with length-prefixed frames
//   channel:tcp            tcp:// on loopback (TCP_NODELAY, heartbeats on as by default)
//   channel:shm-json, channel:unix-json   the json codec with a string of `size`
//                          characters, as baseline:fork-json sends
// The driver listens, the echo connects; the shm: rendezvous is an abstract
// socket and the rings live in a memfd, so nothing can be left behind.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { channel, type Channel, type ChannelOptions, type ChannelListenOptions as ListenOptions } from '../../index.js';
import { checksum, payload, RttRecorder, unlessExited } from '../kit.js';
import type { BenchCase, DriverContext, EchoContext, TrialParams, TrialResult } from '../types.js';

type View = Uint8Array & { release?: () => void };

export interface Flavour {
  transport: string;
  description: string;
  url(params: TrialParams): string;
  options: ChannelOptions<Uint8Array>;
  zeroCopy: boolean;
  onewayFactor?: number;
  /** See BenchCase.onewayMaxBytes. */
  onewayMaxBytes?: number;
  json?: boolean;
  /** One-way phase with sendBatch()/receiveBatch() of this many messages per call. */
  batch?: number;
  /** Read the one-way phase with receiveEach({ inPlace: true }), checking every message's sequence number. */
  each?: boolean;
  /** With `each`: the handler first copies every message into one Buffer of its own (every byte read, as C's consumer does). */
  copyOut?: boolean;
  /** The driver's listen() only (the echo side connects). */
  listen?: ListenOptions<Uint8Array>;
  /** The URL is only known once listening (tcp://127.0.0.1:0): the driver writes it where the echo reads it. */
  published?: boolean;
}

const urlFile = (p: TrialParams) => join(p.workDir, 'channel.url');

function opts(f: Flavour, size: number): ChannelOptions<Uint8Array> {
  return { codec: f.json ? 'json' : 'raw', maxMessageSize: Math.max(size + 16, 1024), ...f.options };
}

/**
 * The messages of the zero-copy case. Message number `seq` is the payload
 * with `seq` added to its first little-endian word (when it has one), so its
 * checksum is known in advance and a stale or repeated view does not pass.
 */
export class ZeroCopyMessages {
  readonly #payload: Buffer;
  readonly #sum: number;
  readonly #word0: number;

  constructor(size: number) {
    this.#payload = payload(size);
    this.#sum = checksum(this.#payload);
    this.#word0 = size >= 4 ? this.#payload.readUInt32LE(0) : 0;
  }

  /** Writes message `seq` into `view`, every byte of it (the work a producer does in place). */
  fill(view: Uint8Array, seq: number): void {
    view.set(this.#payload);
    if (view.byteLength < 4) return;
    const w = (this.#word0 + seq) >>> 0;
    view[0] = w & 0xff;
    view[1] = (w >>> 8) & 0xff;
    view[2] = (w >>> 16) & 0xff;
    view[3] = w >>> 24;
  }

  /** checksum() of message `seq`. */
  expected(seq: number): number {
    return this.#payload.byteLength < 4 ? this.#sum : (this.#sum + seq) >>> 0;
  }

  /** The checksums of messages 0..n-1 added up (modulo 2^32), as the echo acknowledges a one-way batch. */
  expectedTotal(n: number): number {
    let total = 0;
    for (let seq = 0; seq < n; seq++) total = (total + this.expected(seq)) >>> 0;
    return total;
  }
}

/** The payload is produced in the ring: a loan, every byte written, published. */
async function sendInPlace(ch: Channel<Uint8Array>, messages: ZeroCopyMessages, size: number, seq: number): Promise<void> {
  const view = await ch.loan(size);
  messages.fill(view, seq);
  return ch.publish(view);
}

/** Reads every byte of a received view, releases it, and returns its checksum. */
function consume(view: View): number {
  const sum = checksum(view);
  view.release?.();
  return sum;
}

function mismatch(what: string, got: number, expected: number): Error {
  return new Error(`channel:shm-zerocopy: ${what} has checksum ${got}, expected ${expected}: its bytes did not arrive intact`);
}

/** A one-way acknowledgement carrying the sum of the checksums the echo read (4 bytes, little-endian). */
function totalAck(total: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(total >>> 0);
  return b;
}

/** The message of a next() result (written `got(await ch.next())`: an async wrapper would add promise hops to every round trip). */
function got(r: IteratorResult<Uint8Array>): View {
  if (r.done) throw new Error('channel closed early');
  return r.value as View;
}

/** Message `seq` of a one-way run read by receiveEach(): its number in its first 4 bytes (when it has them). */
function writeSeq(m: Uint8Array, seq: number): void {
  if (m.byteLength >= 4) (m as Buffer).writeUInt32LE(seq, 0);
}

/**
 * Reads `n` messages in place, checking that each carries the next sequence
 * number (when it has 4 bytes); `into`: each is first copied into it (one
 * Buffer for all, as C's consumer copies into one local buffer) and checked there.
 */
async function receiveEvery(ch: Channel<Uint8Array>, n: number, into: Buffer | null): Promise<void> {
  let read = 0;
  let wrong = -1;
  const check = into
    ? (bytes: Buffer, start: number, end: number) => {
        bytes.copy(into, 0, start, end);
        if (end - start >= 4 && into.readUInt32LE(0) !== read && wrong < 0) wrong = read;
        read++;
      }
    : (bytes: Buffer, start: number, end: number) => {
        if (end - start >= 4 && bytes.readUInt32LE(start) !== read && wrong < 0) wrong = read;
        read++;
      };
  while (read < n) {
    if ((await ch.receiveEach(check, { inPlace: true, max: n - read })) === 0) throw new Error(`channel ended after ${read} of ${n}`);
  }
  if (wrong >= 0) throw new Error(`message ${wrong} arrived out of order`);
}

/** The total a zero-copy one-way acknowledgement carries (see totalAck). */
function readTotal(ack: View): number {
  const total = (ack[0]! | (ack[1]! << 8) | (ack[2]! << 16) | (ack[3]! << 24)) >>> 0;
  ack.release?.();
  return total;
}

export function makeCase(f: Flavour): BenchCase {
  async function driver(ctx: DriverContext): Promise<TrialResult> {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    const server = await channel.listen<Uint8Array>(f.url(ctx.params), { ...opts(f, size), ...f.listen });
    if (f.published) writeFileSync(urlFile(ctx.params), server.url);
    const echo = ctx.startEcho();
    const first = await unlessExited(server[Symbol.asyncIterator]().next(), echo.exited);
    await server.close();
    const ch = first.value as Channel<Uint8Array>;
    const msg = (f.json ? 'x'.repeat(size) : payload(size)) as unknown as Uint8Array;
    const zc = f.zeroCopy ? new ZeroCopyMessages(size) : null;
    const rtt = new RttRecorder(warmup, count);
    await unlessExited(
      (async () => {
        let round = 0;
        do {
          rtt.start();
          if (zc) {
            await sendInPlace(ch, zc, size, round);
            const sum = consume(got(await ch.next()));
            if (sum !== zc.expected(round)) throw mismatch(`reply ${round}`, sum, zc.expected(round));
          } else {
            await ch.send(msg);
            (got(await ch.next())).release?.();
          }
          round++;
        } while (!rtt.stop());
      })(),
      echo.exited,
    );
    // At most 1 MiB a sendBatch() call (as the one-way senders of the other
    // cases await every MiB): more than the ring holds would be queued copies.
    const perBatch = f.batch ? Math.max(1, Math.min(f.batch, Math.floor((1 << 20) / Math.max(1, size)))) : 0;
    // Messages that carry their sequence number each need bytes of their own.
    const many = Array.from({ length: perBatch }, () => (f.each ? Buffer.from(msg) : msg));
    /** Sends n messages and waits for the acknowledgement; zero-copy: returns the total it carries. */
    const batch = async (n: number): Promise<number | undefined> => {
      if (zc) {
        for (let seq = 0; seq < n; seq++) await sendInPlace(ch, zc, size, seq);
        return readTotal(got(await ch.next()));
      }
      let last: Promise<void> = Promise.resolve();
      if (f.batch) {
        for (let i = 0; i < n; i += perBatch) {
          const run = i + perBatch <= n ? many : many.slice(0, n - i);
          if (f.each) for (let k = 0; k < run.length; k++) writeSeq(run[k]!, i + k);
          await ch.sendBatch(run);
        }
        (got(await ch.next())).release?.();
        return undefined;
      }
      // Await now and then: every 1024 messages or every MiB, whichever comes
      // first. That follows backpressure without a promise per message, and
      // does not pile up what the transport cannot take yet (1024 large
      // messages would be 64 MiB to 1 GiB of queued copies).
      const every = Math.max(1, Math.min(1024, Math.floor((1 << 20) / Math.max(1, size))));
      for (let i = 0; i < n; i++) {
        last = ch.send(msg);
        if ((i + 1) % every === 0) await last;
      }
      await last;
      (got(await ch.next())).release?.();
      return undefined;
    };
    const verify = (n: number, total: number | undefined) => {
      if (zc && total !== zc.expectedTotal(n)) throw mismatch(`the one-way batch of ${n} messages`, total ?? NaN, zc.expectedTotal(n));
    };
    verify(onewayWarmup, await unlessExited(batch(onewayWarmup), echo.exited));
    const t0 = process.hrtime.bigint();
    const total = await unlessExited(batch(onewayCount), echo.exited);
    const onewayNs = Number(process.hrtime.bigint() - t0);
    verify(onewayCount, total);
    await ch.close();
    await echo.exited;
    return { rttNs: rtt.samples, onewayNs };
  }

  async function echo(ctx: EchoContext): Promise<void> {
    const { size, warmup, count, onewayWarmup, onewayCount } = ctx.params;
    const ch = await channel.connect<Uint8Array>(f.published ? readFileSync(urlFile(ctx.params), 'utf8') : f.url(ctx.params), opts(f, size));
    const zc = f.zeroCopy ? new ZeroCopyMessages(size) : null;
    for (let i = 0; i < warmup + count; i++) {
      const m = got(await ch.next());
      if (zc) {
        const sum = consume(m);
        if (sum !== zc.expected(i)) throw mismatch(`message ${i}`, sum, zc.expected(i));
        await sendInPlace(ch, zc, size, i);
      } else {
        await ch.send(m);
        m.release?.();
      }
    }
    for (const n of [onewayWarmup, onewayCount]) {
      if (f.each) await receiveEvery(ch, n, f.copyOut ? Buffer.alloc(size) : null);
      else if (f.batch) for (let got = 0; got < n; ) got += (await ch.receiveBatch(Math.min(n - got, 1024))).length;
      else if (zc) {
        let total = 0;
        for (let i = 0; i < n; i++) total = (total + consume(got(await ch.next()))) >>> 0;
        await ch.send(totalAck(total));
        continue;
      } else for (let i = 0; i < n; i++) (got(await ch.next())).release?.();
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
    ...(f.onewayMaxBytes ? { onewayMaxBytes: f.onewayMaxBytes } : {}),
    driver,
    echo,
  };
}

const shmUrl = (p: TrialParams) => `shm:${p.namePrefix}-ch`;
/**
 * One-way bytes of the streaming shm: cases: 512 MiB of 64 KiB messages
 * pass in 20-35 ms, about what it takes two processes that just woke each
 * other to be spread over two cores again (until then they share one, at
 * a third of the speed); 4 GiB measures the stream they settle into.
 */
const SHM_ONEWAY_BYTES = 4 * 2 ** 30;

export const channelShm = makeCase({
  transport: 'channel:shm',
  description: "Channel over shm: (SPSC rings in a memfd), raw codec, spin 'auto' then a doorbell byte on the control socket (uv_poll)",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  // Enough one-way messages to cycle the 4 MiB ring many times past the JIT warm-up.
  onewayFactor: 20,
  onewayMaxBytes: SHM_ONEWAY_BYTES,
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
  onewayMaxBytes: SHM_ONEWAY_BYTES,
});

export const channelShmBatch = makeCase({
  transport: 'channel:shm-batch',
  description: "Channel over shm:, raw codec, spin 'auto'; one-way sent with sendBatch() and read with receiveBatch(), 256 messages a call",
  url: shmUrl,
  options: { spin: 'auto' },
  zeroCopy: false,
  onewayFactor: 40,
  onewayMaxBytes: SHM_ONEWAY_BYTES,
  batch: 256,
});

/**
 * The one-way flavours of sendBatch() and receiveEach({ inPlace }) (channel:shm-each and channel:shm-each-copy).
 * 200× count: at 64 B, 1.2 M messages (40×) pass in about 0.1 s and measured 9.2 M msg/s;
 * 6 M messages, 12-18 M msg/s in the same minute.
 */
function eachCase(transport: string, description: string, copyOut: boolean): BenchCase {
  return makeCase({ transport, description, url: shmUrl, options: { spin: 'auto' }, zeroCopy: false, onewayFactor: 200, onewayMaxBytes: SHM_ONEWAY_BYTES, batch: 256, each: true, copyOut });
}

export const channelShmEach = eachCase(
  'channel:shm-each',
  "Channel over shm:, raw codec, spin 'auto'; one-way sent with sendBatch() (256 a call, each stamped with its sequence number) and read in place with receiveEach({ inPlace: true }), every sequence number checked",
  false,
);

export const channelShmEachCopy = eachCase(
  'channel:shm-each-copy',
  "As channel:shm-each, but the handler first copies every message out of the ring into one Buffer of its own (every byte read, as baseline:c-shm's consumer copies into one local buffer) and checks its number there",
  true,
);

export const channelShmZeroCopy = makeCase({
  transport: 'channel:shm-zerocopy',
  description:
    'Channel over shm:, loan()/publish(): the producer writes every byte in place, the receiver checksums every byte of its ring view, then releases it; sums checked',
  url: shmUrl,
  options: { spin: 'auto', zeroCopy: true },
  zeroCopy: true,
});

export const channelUnix = makeCase({
  transport: 'channel:unix',
  description: 'Channel over unix: (net stream socket, u32 length prefix per frame), raw codec',
  url: (p) => `unix:${join(p.workDir, 'channel.sock')}`,
  options: {},
  zeroCopy: false,
});

export const channelTcp = makeCase({
  transport: 'channel:tcp',
  description: 'Channel over tcp:// on loopback (u32 length prefix per frame, TCP_NODELAY, heartbeats on), raw codec (compare baseline:net-unix, channel:unix)',
  url: () => 'tcp://127.0.0.1:0',
  options: {},
  zeroCopy: false,
  published: true,
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
