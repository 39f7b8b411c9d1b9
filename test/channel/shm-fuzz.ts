// A seeded fuzz of the memory a shm: connector shares with its listener
// (layout in src/channel/ring.ts). Forged connectors (forge.ts) write valid
// records, then corrupt the ring: control words, record lengths, wrap
// markers, slots, frame bytes, the head. The listener is this process, so
// its event loop, CPU time and descriptors are measured here. Used by
// test/channel/channel-fuzz.test.ts (npm test) and test/stress/channel-fuzz.stress.ts.
//
// The seed fixes the sequence of mutations; how the listener interleaves
// with them (whether it looked between two writes) depends on timing.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { monitorEventLoopDelay, performance } from 'node:perf_hooks';
import { channel, shm, type Channel, type CloseInfo, type FdRegion } from 'ipckit';
import { LAYOUT, forgeShm, type ShmForgery } from './forge.js';
import { startPeer, type Peer } from '../helpers.js';

/** mulberry32: a small seeded PRNG, uniform in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The seed: IPCKIT_FUZZ_SEED if set, otherwise a random one (printed by the caller). */
export function fuzzSeed(): number {
  const env = process.env.IPCKIT_FUZZ_SEED;
  if (env === undefined || env === '') return randomBytes(4).readUInt32LE(0);
  const n = Number(env);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new Error(`IPCKIT_FUZZ_SEED must be an integer in [0, 2^32), got ${env}`);
  return n;
}

/** IPCKIT_FUZZ_MUTATIONS if set, otherwise `fallback`. */
export function fuzzCount(fallback: number): number {
  const env = process.env.IPCKIT_FUZZ_MUTATIONS;
  if (env === undefined || env === '') return fallback;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`IPCKIT_FUZZ_MUTATIONS must be a positive integer, got ${env}`);
  return n;
}

export const openFds = (): number => readdirSync('/proc/self/fd').length;

const immediate = () => new Promise<void>((r) => setImmediate(r));

/** maxMessageSize of the listeners under test, and the largest frame (payload + 5 header bytes) they accept. */
const MAX_MESSAGE = 1024;
const MAX_IN = MAX_MESSAGE + 5;
const DATA = LAYOUT.CONTROL;
/** How long a channel may take to close once it must (it closes within a few event-loop turns normally). */
const CLOSE_BOUND_MS = 2000;

const recordBytes = (len: number, header: number) => (header + len + 7) & ~7;

export interface FuzzReport {
  seed: number;
  mutations: number;
  /** Forged connections opened. */
  connections: number;
  /** Per mutation kind: [applied, after which the forged channel was found closed]. */
  kinds: Record<string, [number, number]>;
  /** Close outcomes of forged channels ('error:CODE', 'peer-lost', ...). */
  closes: Record<string, number>;
  /** Closes that are not allowed, each with the step that led to it. */
  unexpected: string[];
  /** Messages forged channels delivered. */
  messages: number;
  /** Forged connections closed by us (voluntarily, or because the ring had no room left that the fuzz could find). */
  closedByUs: number;
  /** Good traffic checks (request round trips, or fresh channels after a shared ring failed) and their failures. */
  goodChecks: number;
  goodFailures: string[];
  /** Longest event-loop delay seen, in ms. */
  maxDelayMs: number;
  /** CPU share of this process while idle between mutations, at each checkpoint (a busy loop shows ~1). */
  idleCpu: number[];
  fdStart: number;
  fdPeak: number;
  fdEnd: number;
  ms: number;
}

function newReport(seed: number): FuzzReport {
  return {
    seed,
    mutations: 0,
    connections: 0,
    kinds: {},
    closes: {},
    unexpected: [],
    messages: 0,
    closedByUs: 0,
    goodChecks: 0,
    goodFailures: [],
    maxDelayMs: 0,
    idleCpu: [],
    fdStart: 0,
    fdPeak: 0,
    fdEnd: 0,
    ms: 0,
  };
}

/** A one-line summary of a report. */
export function summary(r: FuzzReport): string {
  const kinds = Object.entries(r.kinds)
    .map(([k, [n, c]]) => `${k} ${n}/${c}`)
    .join(', ');
  const closes = Object.entries(r.closes)
    .map(([k, n]) => `${k} ${n}`)
    .join(', ');
  return (
    `seed ${r.seed}: ${r.mutations} mutations in ${(r.ms / 1000).toFixed(1)} s over ${r.connections} forged connections; ` +
    `closes: ${closes}; ${r.closedByUs} closed by the fuzz; ${r.messages} messages delivered; ${r.goodChecks} good checks; ` +
    `max event-loop delay ${r.maxDelayMs.toFixed(1)} ms; idle CPU max ${(Math.max(0, ...r.idleCpu) * 100).toFixed(0)}%; ` +
    `fds ${r.fdStart} -> peak ${r.fdPeak} -> ${r.fdEnd}. Mutations (applied/closed): ${kinds}`
  );
}

/**
 * CPU share of this process while the fuzz does nothing: the least of three
 * 50 ms windows (a measurement, not a wait for a peer). A loop that never
 * stops shows ~1 in every window; garbage collection after thousands of
 * connections (each a mapping and a socket) shows in one window at most.
 */
async function idleCpuShare(): Promise<number> {
  let least = Infinity;
  for (let k = 0; k < 3; k++) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await new Promise((r) => setTimeout(r, 50));
    const c = process.cpuUsage(c0);
    least = Math.min(least, (c.user + c.system) / 1000 / (performance.now() - t0));
  }
  return least;
}

/** Resolves true once `v` closed, false if it did not within `ms`. */
function closedWithin(v: { info: CloseInfo | null; onClose: Array<() => void> }, ms: number): Promise<boolean> {
  if (v.info) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    v.onClose.push(() => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Resolves once `check()` holds (looked at every millisecond), or false after `ms`. */
async function until(check: () => boolean, ms: number): Promise<boolean> {
  const end = performance.now() + ms;
  while (!check()) {
    if (performance.now() > end) return false;
    await new Promise((r) => setTimeout(r, 1));
  }
  return true;
}

/** Adds a line to a list of findings, keeping the first hundred (a long run that goes wrong would otherwise fill memory). */
function note(list: string[], line: string): void {
  if (list.length < 100) list.push(line);
  else if (list.length === 100) list.push('(more not kept)');
}

const describeClose = (info: CloseInfo) => (info.reason === 'error' ? `error:${(info.error as { code?: string } | undefined)?.code}` : info.reason);

/** Random helpers over one PRNG. */
class Dice {
  readonly next: () => number;
  constructor(seed: number) {
    this.next = mulberry32(seed);
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)]!;
  }
  /** A random 32-bit signed value. */
  i32(): number {
    return (this.next() * 4294967296) | 0;
  }
  /** A word value worth trying where a length, a flag or a position is read. */
  word(R: number): number {
    switch (this.int(12)) {
      case 0:
        return 0;
      case 1:
        return -1;
      case 2:
        return 1;
      case 3:
        return -(2 + this.int(0x7ffffffe)); // negative, not the wrap marker
      case 4:
        return 0x7fffffff;
      case 5:
        return 0x40000000 + this.int(0x3fffffff);
      case 6:
        return MAX_IN + 1 + this.int(8); // just over the largest frame
      case 7:
        return MAX_IN;
      case 8:
        return R - this.int(16);
      case 9:
        return 1 + this.int(7);
      case 10:
        return this.int(R);
      default:
        return this.i32();
    }
  }
  /** A frame length: mostly small, sometimes large, sometimes the largest. */
  frameLength(headerBytes: number): number {
    const r = this.next();
    const payload = r < 0.6 ? this.int(64) : r < 0.95 ? this.int(MAX_MESSAGE + 1) : MAX_MESSAGE;
    return headerBytes + payload;
  }
}

/** One ring as a producer sees it: where records go and the words that describe it. */
interface RingView {
  i32: Int32Array;
  u8: Uint8Array;
  R: number;
  /** Record header bytes: 4 ([length]) or 8 ([length][slot]). */
  header: number;
  headWord: number;
  tailWord: number;
  slot: number;
}

/**
 * Places a valid record of `len` frame bytes at `head` (a wrap marker first
 * when it does not fit before the end) if the ring has room as seen from
 * `tail`; returns the head after it, or null. Unpublished.
 */
function placeRecord(v: RingView, head: number, tail: number, len: number, kind: number, fill: number): number | null {
  const { i32, u8, R, header } = v;
  const total = recordBytes(len, header);
  let off = head & (R - 1);
  const contiguous = R - off;
  const need = total <= contiguous ? total : contiguous + total;
  if (R - ((head - tail) >>> 0) < need) return null;
  if (total > contiguous) {
    i32[(DATA + off) >> 2] = -1;
    head = (head + contiguous) | 0;
    off = 0;
  }
  const at = DATA + off;
  i32[at >> 2] = len;
  if (header === 8) i32[(at >> 2) + 1] = v.slot;
  u8[at + header] = kind;
  u8.fill(fill & 255, at + header + 1, at + header + len);
  return (head + total) | 0;
}

/** The tail a producer may trust: the word, unless it was scribbled on (then everything before the head was read). */
function trustedTail(v: RingView, head: number): number {
  const tail = Atomics.load(v.i32, v.tailWord);
  return ((head - tail) >>> 0) > v.R ? head : tail;
}

/** Writes up to `count` valid records (messages, one in ten a request) at `head`; returns the head after them. */
function writeValid(d: Dice, v: RingView, head: number, count: number): { head: number; placed: number } {
  const tail = trustedTail(v, head);
  let placed = 0;
  for (; placed < count; placed++) {
    const request = d.chance(0.1);
    const next = placeRecord(v, head, tail, d.frameLength(request ? 5 : 1), request ? 1 : 0, d.int(256));
    if (next === null) break;
    head = next;
  }
  return { head, placed };
}

/**
 * One mutation of a ring whose next record goes at `head` (the published
 * head: everything before it was read, or the channel failed). Returns its
 * name and the head to publish.
 */
function mutate(d: Dice, v: RingView, head: number, extraWords: Array<[string, number]>): { kind: string; publish: number } {
  const { i32, u8, R, header } = v;
  const at = (pos: number) => DATA + (pos & (R - 1));
  const aligned = (n: number) => 8 * n;
  switch (d.int(16)) {
    case 0: {
      // Valid records, then one word among them (a length, a slot, a wrap marker, frame bytes) replaced.
      const { head: end, placed } = writeValid(d, v, head, 1 + d.int(4));
      if (placed === 0) return { kind: 'records-then-word', publish: head };
      const span = (end - head) >>> 0;
      const pos = (head + 4 * d.int(span >>> 2)) | 0;
      i32[at(pos) >> 2] = d.word(R);
      return { kind: 'records-then-word', publish: end };
    }
    case 1: {
      // A record whose length is 0, negative, huge, just over the largest frame, or the largest.
      const len = d.frameLength(1);
      const next = placeRecord(v, head, trustedTail(v, head), len, 0, 7);
      if (next === null) return { kind: 'length', publish: head };
      // A wrap marker went first if the record did not fit before the end: then it is at offset 0.
      const recAt = recordBytes(len, header) > R - (head & (R - 1)) ? DATA : at(head);
      i32[recAt >> 2] = d.pick([0, -(2 + d.int(1000)), d.i32() | 0x80000000, 0x7fffffff, MAX_IN + 1 + d.int(8), MAX_IN]);
      return { kind: 'length', publish: next };
    }
    case 2: {
      // A wrap marker where the next record goes (at offset 0 too), published over a random span.
      if (d.chance(0.4) && (head & (R - 1)) !== 0) {
        // A valid wrap first, so that the bad one is at offset 0.
        i32[at(head) >> 2] = -1;
        head = (head + (R - (head & (R - 1)))) | 0;
      }
      i32[at(head) >> 2] = -1;
      return { kind: 'wrap-marker', publish: (head + aligned(1 + d.int(R / 8))) | 0 };
    }
    case 3: {
      // A record that runs past the end of the ring: first valid records up to near the end.
      let h = head;
      const tail = trustedTail(v, head);
      while (R - (h & (R - 1)) > MAX_IN + header + 8) {
        const room = R - (h & (R - 1)) - header - 8 * (1 + d.int(8));
        const next = placeRecord(v, h, tail, Math.min(MAX_IN - 4, room), 0, 3);
        if (next === null) break;
        h = next;
      }
      const off = h & (R - 1);
      i32[(DATA + off) >> 2] = R - off - header + 1 + d.int(64);
      if (header === 8) i32[((DATA + off) >> 2) + 1] = v.slot;
      return { kind: 'length-past-end', publish: (h + (R - off) + aligned(d.int(4))) | 0 };
    }
    case 4: {
      // A valid record, published only in part.
      const len = 16 + d.int(MAX_MESSAGE);
      const next = placeRecord(v, head, trustedTail(v, head), len, 0, 5);
      if (next === null) return { kind: 'short-publish', publish: head };
      return { kind: 'short-publish', publish: (next - aligned(1 + d.int(Math.min(16, (recordBytes(len, header) >> 3) - 1)))) | 0 };
    }
    case 5:
      return { kind: 'head-random', publish: d.i32() };
    case 6:
      return { kind: 'head-backwards', publish: (head - aligned(1 + d.int(R / 8))) | 0 };
    case 7:
      // Beyond the ring as seen from the reader (R exactly is a full ring of whatever is there).
      return { kind: 'head-beyond', publish: (head + R + aligned(d.int(3) === 0 ? 0 : 1 + d.int(64))) | 0 };
    case 8: {
      const { head: end } = writeValid(d, v, head, d.int(3));
      return { kind: 'head-unaligned', publish: (end + 1 + d.int(7)) | 0 };
    }
    case 9:
      // Over whatever the ring holds past the head (old records, old bytes).
      return { kind: 'head-over-stale', publish: (head + aligned(1 + d.int(R / 8))) | 0 };
    case 10: {
      // A record with a random kind byte (and for a shared ring sometimes a random slot).
      const len = d.chance(0.3) ? 1 + d.int(6) : d.frameLength(1);
      const next = placeRecord(v, head, trustedTail(v, head), len, d.int(256), d.int(256));
      if (next === null) return { kind: 'frame-kind', publish: head };
      if (header === 8 && d.chance(0.5)) {
        // Another slot: nobody's (0: "delivered already"), a neighbour's (the good channel's, usually), any.
        const recAt = recordBytes(len, header) > R - (head & (R - 1)) ? DATA : at(head);
        i32[(recAt >> 2) + 1] = d.pick([0, v.slot - 1, v.slot + 1, d.i32()]);
      }
      return { kind: 'frame-kind', publish: next };
    }
    case 11: {
      // Random bytes anywhere in the ring's data (read or not yet read), then valid records.
      const n = 1 + d.int(32);
      for (let k = 0; k < n; k++) u8[DATA + d.int(R)] = d.int(256);
      return { kind: 'data-bytes', publish: writeValid(d, v, head, d.int(3)).head };
    }
    case 12: {
      // Frame bytes of valid records randomised (kind byte, correlation id, payload).
      const { head: end, placed } = writeValid(d, v, head, 1 + d.int(3));
      if (placed > 0) {
        const span = (end - head) >>> 0;
        for (let k = 0, n = 1 + d.int(8); k < n; k++) u8[at((head + d.int(span)) | 0)] = d.int(256);
      }
      return { kind: 'frame-bytes', publish: end };
    }
    case 13: {
      // One of the control words other than the head (flags, tail, header, the other ring's words).
      const [name, word] = d.pick(extraWords);
      i32[word] = d.word(R);
      return { kind: `word-${name}`, publish: writeValid(d, v, head, d.int(3)).head };
    }
    default:
      // No mutation: valid records only (the ring moves on, wraps, and the reader's state with it).
      return { kind: 'valid', publish: writeValid(d, v, head, 1 + d.int(6)).head };
  }
}

/** A forged connection under fuzz and the listener's channel for it. */
interface Victim {
  f: ShmForgery;
  ring: RingView;
  /** Shared ring: its mapping (ours to close). */
  shared: FdRegion | null;
  ch: Channel<Buffer>;
  info: CloseInfo | null;
  onClose: Array<() => void>;
  /** The published head: where the next record goes. */
  head: number;
  byUs: boolean;
  lastStep: string;
}

/** Counts the messages of `ch` and records its close in `into`. */
function watch(ch: Channel<Buffer>, report: FuzzReport, into: { info: CloseInfo | null; onClose: Array<() => void> }): void {
  into.info = ch.closeInfo ?? null;
  ch.on('message', () => report.messages++);
  ch.on('close', (info: CloseInfo) => {
    into.info = info;
    for (const f of into.onClose.splice(0)) f();
  });
}

/** Makes the connector's ring 1 (listener -> connector) empty again and wakes the listener if it waits for room: the forged peer reads nothing. */
function drainRing1(v: Victim): void {
  const { i32 } = v.f;
  Atomics.store(i32, LAYOUT.tail(1), Atomics.load(i32, LAYOUT.head(1)));
  if (Atomics.compareExchange(i32, LAYOUT.producerSleeping(1), 1, 0) === 1) v.f.ring();
}

interface Setup {
  name: string;
  it: AsyncIterator<Channel<Buffer>>;
  report: FuzzReport;
  d: Dice;
  shared: boolean;
}

async function openVictim(s: Setup): Promise<Victim> {
  const R = s.shared ? 8192 : s.d.pick([4096, 8192]);
  const conn = s.it.next();
  const f = await forgeShm(s.name, { R });
  const ch = (await conn).value as Channel<Buffer>;
  s.report.connections++;
  let ring: RingView;
  let shared: FdRegion | null = null;
  if (s.shared) {
    shared = shm.fromFd(f.fds.shift()!, { closeFd: true });
    ring = {
      i32: new Int32Array(shared.buffer),
      u8: new Uint8Array(shared.buffer),
      R: f.reply.shared.ring as number,
      header: 8,
      headWord: LAYOUT.S_HEAD,
      tailWord: LAYOUT.S_TAIL,
      slot: f.reply.shared.slot as number,
    };
  } else ring = { i32: f.i32, u8: f.u8, R, header: 4, headWord: LAYOUT.head(0), tailWord: LAYOUT.tail(0), slot: -1 };
  const v: Victim = { f, ring, shared, ch, info: null, onClose: [], head: Atomics.load(ring.i32, ring.headWord), byUs: false, lastStep: 'open' };
  watch(ch, s.report, v);
  // Valid records first, so that the fuzz starts at a random place in the ring (and after wraps).
  const { head } = writeValid(s.d, ring, v.head, s.d.int(24));
  v.lastStep = 'valid records after opening';
  await publishAndSettle(v, head);
  v.head = head;
  return v;
}

/** Closes our end of a victim and waits for the listener's channel to close; false if it did not within the bound. */
async function closeVictim(v: Victim): Promise<boolean> {
  if (!v.info) v.byUs = true;
  v.f.close();
  const ok = await closedWithin(v, CLOSE_BOUND_MS);
  v.shared?.close();
  v.f.mem.close();
  return ok;
}

/** Records a close; a reason not in `allowed` goes to report.unexpected. */
function judge(report: FuzzReport, who: string, info: CloseInfo, allowed: string[], step: number, lastStep: string): void {
  const what = describeClose(info);
  report.closes[`${who} ${what}`] = (report.closes[`${who} ${what}`] ?? 0) + 1;
  if (!allowed.includes(what)) note(report.unexpected, `step ${step} (${lastStep}): ${who} channel closed with ${what}${info.error ? ` (${info.error.message})` : ''}`);
}

/**
 * What a forged channel may close with: a ring or a frame that makes no
 * sense fails with ERR_IPCKIT_BAD_FRAME (the raw codec decodes any bytes);
 * when we closed it, the peer left (with or without its closed flag up).
 */
const allowedFor = (v: Victim, extra: string[] = []) => ['error:ERR_IPCKIT_BAD_FRAME', ...extra, ...(v.byUs ? ['peer-lost', 'peer-closed'] : [])];

/** Publishes the head, rings, and lets the listener run until it read everything published (or closed the channel), within a few turns. */
async function publishAndSettle(v: Victim, head: number): Promise<void> {
  const { i32, headWord, tailWord } = v.ring;
  if (v.ring.header === 8) {
    // Shared ring: a writer publishes under the lock (taken here by force: the fuzz may have left it set).
    Atomics.store(i32, LAYOUT.S_LOCK, v.ring.slot);
    Atomics.store(i32, headWord, head);
    Atomics.store(i32, LAYOUT.S_LOCK, 0);
  } else Atomics.store(i32, headWord, head);
  v.f.ring();
  for (let turn = 0; turn < 16 && !v.info; turn++) {
    await immediate();
    if (turn >= 1 && Atomics.load(i32, tailWord) === head) break;
  }
}

export interface FuzzOptions {
  seed: number;
  mutations: number;
  /** Progress lines. */
  log?: (line: string) => void;
}

/** A good channel through a shared ring: an in-process connector and the listener's channel for it. */
interface Bystander {
  client: Channel<Buffer>;
  srv: Channel<Buffer>;
  info: CloseInfo | null;
  onClose: Array<() => void>;
}

/** Resolves with `p`, or rejects after `ms` (a check that must not hang the fuzz). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  return Promise.race([p, new Promise<T>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * The fuzz. Private rings (`shared` false): a shm: listener (raw,
 * maxMessageSize 1024) in this process, one good peer process whose
 * requests are checked every 500 mutations (one request is always in flight
 * meanwhile), forged connectors corrupting their ring 0. Shared ring
 * (`shared` true): the listener has sharedRing, forged connectors corrupt
 * the shared ring, and an in-process good channel ("bystander") lives in
 * the same ring: when the ring fails, it must fail with it, and a fresh good
 * channel (a newcomer, given a fresh ring) must exchange messages both ways.
 */
export async function fuzzShm(o: FuzzOptions & { shared: boolean }): Promise<FuzzReport> {
  const report = newReport(o.seed);
  const d = new Dice(o.seed);
  const t0 = performance.now();
  report.fdStart = report.fdPeak = openFds();
  const delay = monitorEventLoopDelay({ resolution: 10 });
  delay.enable();
  const name = `ipckit-test-fuzz-${process.pid}-${randomBytes(4).toString('hex')}`;
  const server = await channel.listen<Buffer>(`shm:${name}`, { codec: 'raw', maxMessageSize: MAX_MESSAGE, ...(o.shared ? { sharedRing: true, ringSize: 8192 } : {}) });
  const it = server[Symbol.asyncIterator]();
  const s: Setup = { name, it, report, d, shared: o.shared };
  let peer: Peer | null = null;
  let good: Channel<Buffer> | null = null;
  let bystander: Bystander | null = null;
  let victim: Victim | null = null;
  const current = { step: 0 };

  const goodRequest = (k: number): Promise<void> =>
    good!.request(Buffer.from(`ping ${k}`), { timeout: 10_000 }).then(
      (answer) => {
        report.goodChecks++;
        if (String(answer) !== `re:ping ${k}`) note(report.goodFailures, `request ${k}: answer ${JSON.stringify(String(answer))}`);
      },
      (e: Error) => {
        report.goodChecks++;
        note(report.goodFailures, `request ${k}: ${(e as { code?: string }).code ?? ''} ${e.message}`);
      },
    );

  /** A fresh good channel through the shared ring; with `exchange`, a message each way must arrive. */
  const newBystander = async (exchange: boolean): Promise<Bystander> => {
    const conn = it.next();
    const client = await channel.connect<Buffer>(server.url, { codec: 'raw', maxMessageSize: MAX_MESSAGE });
    const srv = (await conn).value as Channel<Buffer>;
    const b: Bystander = { client, srv, info: srv.closeInfo ?? null, onClose: [] };
    srv.on('close', (info: CloseInfo) => {
      b.info = info;
      for (const f of b.onClose.splice(0)) f();
    });
    client.on('error', () => {});
    if (exchange) {
      report.goodChecks++;
      try {
        const k = current.step;
        const got = within(srv.next(), 5000, 'newcomer -> listener');
        await client.send(Buffer.from(`up ${k}`));
        const up = await got;
        if (String(up.value) !== `up ${k}`) throw new Error(`the listener got ${JSON.stringify(String(up.value))}`);
        const back = within(client.next(), 5000, 'listener -> newcomer');
        await srv.send(Buffer.from(`down ${k}`));
        const down = await back;
        if (String(down.value) !== `down ${k}`) throw new Error(`the newcomer got ${JSON.stringify(String(down.value))}`);
      } catch (e) {
        note(report.goodFailures, `step ${current.step}: a fresh channel after the shared ring failed: ${(e as Error).message}`);
      }
    }
    // From here on the bystander only listens: what reaches it is counted.
    srv.on('message', () => report.messages++);
    return b;
  };
  const dropBystander = async (b: Bystander): Promise<void> => {
    await b.client.close();
    await closedWithin(b, CLOSE_BOUND_MS);
  };

  try {
    if (o.shared) bystander = await newBystander(false);
    else {
      peer = startPeer('channel-peer', ['connect', server.url, JSON.stringify({ codec: 'raw', maxMessageSize: MAX_MESSAGE })]);
      const [conn, ready] = await Promise.all([it.next(), peer.next<{ ready?: boolean }>()]);
      if (!ready.ready) throw new Error(`the good peer did not start: ${JSON.stringify(ready)}`);
      good = conn.value as Channel<Buffer>;
    }
    const extraWords: Array<[string, number]> = o.shared
      ? [
          ['tail', LAYOUT.S_TAIL],
          ['consumer-sleeping', LAYOUT.S_CONSUMER_SLEEPING],
          ['waiting', LAYOUT.S_WAITING],
          ['lock', LAYOUT.S_LOCK],
          ['magic', 0],
          ['version', 1],
          ['ring-size', 2],
          ['max-frame', 3],
        ]
      : [
          ['closed', LAYOUT.closed(0)],
          ['tail', LAYOUT.tail(0)],
          ['consumer-sleeping', LAYOUT.consumerSleeping(0)],
          ['producer-sleeping', LAYOUT.producerSleeping(0)],
          ['magic', 0],
          ['version', 1],
          ['ring-size', 2],
          ['max-frame', 3],
          ['ring1-head', LAYOUT.head(1)],
          ['ring1-tail', LAYOUT.tail(1)],
          ['ring1-closed', LAYOUT.closed(1)],
          ['ring1-consumer-sleeping', LAYOUT.consumerSleeping(1)],
          ['ring1-producer-sleeping', LAYOUT.producerSleeping(1)],
        ];
    const cpuEvery = Math.max(500, Math.ceil(o.mutations / 20 / 500) * 500);
    let inFlight = good ? goodRequest(0) : Promise.resolve();

    /** The victim closed (or we closed it): judge it, and on a shared ring that failed check the bystander and a newcomer. */
    const afterClose = async (v: Victim, step: number, extra: string[] = []): Promise<void> => {
      judge(report, 'forged', v.info!, allowedFor(v, extra), step, v.lastStep);
      if (!o.shared || !bystander) return;
      const ringFailed = (v.info!.error as { code?: string } | undefined)?.code === 'ERR_IPCKIT_BAD_FRAME' && /in the shared ring/.test(v.info!.error!.message);
      if (ringFailed || bystander.info) {
        // A corrupt shared ring fails every channel through it.
        if (!(await closedWithin(bystander, CLOSE_BOUND_MS))) note(report.unexpected, `step ${step} (${v.lastStep}): the shared ring failed but the good channel through it stayed open`);
        else judge(report, 'bystander', bystander.info!, ['error:ERR_IPCKIT_BAD_FRAME'], step, v.lastStep);
        await dropBystander(bystander);
        bystander = null;
        bystander = await newBystander(ringFailed);
      }
    };
    const leave = async (v: Victim, step: number): Promise<void> => {
      if (!(await closeVictim(v))) note(report.unexpected, `step ${step} (${v.lastStep}): the listener's channel did not close within ${CLOSE_BOUND_MS} ms after its forged peer left`);
      else await afterClose(v, step);
      report.closedByUs++;
    };

    victim = await openVictim(s);
    // Lock stalls cost LOCK_STALL_MS each: two in a short run, two per 50,000 mutations in a long one.
    const stallEvery = !o.shared || o.mutations < 100 ? 0 : o.mutations < 100_000 ? Math.floor(o.mutations / 2) : 50_000;
    for (let step = 1; step <= o.mutations; step++) {
      current.step = step;
      if (d.chance(0.01)) {
        // Now and then the forged peer leaves (sometimes with its closed flag up): peer-lost or peer-closed.
        if (d.chance(0.5)) Atomics.store(victim.f.i32, LAYOUT.closed(0), 1);
        victim.lastStep += '; then closed by the fuzz';
        await leave(victim, step);
        victim = await openVictim(s);
      }
      if (stallEvery > 0 && step < o.mutations && (step % stallEvery === 0 || step % stallEvery === 1) && step > 1) {
        // The shared ring's lock held past LOCK_STALL_MS: by this connection's slot (its channel fails with
        // ERR_IPCKIT_PROTOCOL), or by a slot of no connection (the lock is just freed).
        const own = step % stallEvery === 0;
        const v = victim;
        const holder = own ? v.ring.slot : 0x7ffffff0;
        Atomics.store(v.ring.i32, LAYOUT.S_LOCK, holder);
        v.lastStep = `lock held by ${own ? 'our slot' : 'a slot of no connection'}`;
        report.mutations++;
        const counts = (report.kinds[own ? 'lock-stall-own' : 'lock-stall-foreign'] ??= [0, 0]);
        counts[0]++;
        const freed = await until(() => Atomics.load(v.ring.i32, LAYOUT.S_LOCK) !== holder, 3000);
        if (!freed) note(report.unexpected, `step ${step}: a shared ring lock held by ${holder} was not freed within 3 s`);
        if (own) {
          if (!(await closedWithin(v, CLOSE_BOUND_MS))) note(report.unexpected, `step ${step}: the lock holder's channel stayed open`);
          else {
            counts[1]++;
            await afterClose(v, step, ['error:ERR_IPCKIT_PROTOCOL']);
          }
          await closeVictim(v);
          victim = await openVictim(s);
        } else if (v.info) {
          counts[1]++;
          note(report.unexpected, `step ${step}: a lock held by no connection closed a channel (${describeClose(v.info)})`);
          await closeVictim(v);
          victim = await openVictim(s);
        }
        continue;
      }
      const m = mutate(d, victim.ring, victim.head, extraWords);
      victim.lastStep = `${m.kind} at head ${victim.head >>> 0}, publishing ${m.publish >>> 0}, R ${victim.ring.R}`;
      report.mutations++;
      const counts = (report.kinds[m.kind] ??= [0, 0]);
      counts[0]++;
      await publishAndSettle(victim, m.publish);
      if (!victim.info) {
        drainRing1(victim);
        victim.head = m.publish;
        // A reader that did not catch up with what it was told (a head it could not read past without failing
        // yet): wait a little more; if the ring still has no room for the fuzz, leave and start over.
        const used = () => ((victim!.head - trustedTail(victim!.ring, victim!.head)) >>> 0) * 2 > victim!.ring.R;
        if (used()) await publishAndSettle(victim, victim.head);
        if (!victim.info && used()) {
          victim.lastStep += '; no room left';
          await leave(victim, step);
          victim = await openVictim(s);
        }
      }
      if (victim.info) {
        counts[1]++;
        await afterClose(victim, step);
        await closeVictim(victim);
        victim = await openVictim(s);
      }
      if (bystander?.info) {
        // A frame with the bystander's slot (the fuzz writes random slots) can fail it alone.
        judge(report, 'bystander', bystander.info, ['error:ERR_IPCKIT_BAD_FRAME'], step, victim.lastStep);
        await dropBystander(bystander);
        bystander = await newBystander(false);
      }
      if (step % 500 === 0 || step === o.mutations) {
        if (good) {
          await inFlight;
          await goodRequest(step);
          inFlight = goodRequest(-step);
        }
        report.fdPeak = Math.max(report.fdPeak, openFds());
        if (step % cpuEvery === 0) {
          const share = await idleCpuShare();
          report.idleCpu.push(share);

        }
        o.log?.(`${step} mutations, ${report.connections} connections, ${((performance.now() - t0) / 1000).toFixed(1)} s`);
      }
    }
    await inFlight;
    const last = victim;
    victim = null;
    if (!last.info) await leave(last, o.mutations);
    else await closeVictim(last);
    if (o.shared) {
      // Once more at the end: a corrupt shared ring fails its channels, and a newcomer is served.
      const v = await openVictim(s);
      v.lastStep = 'final corruption (an unaligned head)';
      await publishAndSettle(v, (v.head + 4) | 0);
      if (!(await closedWithin(v, CLOSE_BOUND_MS))) note(report.unexpected, 'end: an unaligned head did not fail the shared ring');
      else await afterClose(v, o.mutations);
      await closeVictim(v);
    }
  } finally {
    if (victim) await closeVictim(victim);
    if (bystander) await dropBystander(bystander);
    await good?.close();
    peer?.child.stdin?.end();
    if (peer) await peer.exited;
    await server.close();
    delay.disable();
  }
  report.maxDelayMs = delay.max / 1e6;
  report.ms = performance.now() - t0;
  // Descriptors close with the handles that hold them; let pending closes run.
  await until(() => openFds() <= report.fdStart, 2000);
  report.fdEnd = openFds();
  return report;
}

/** What every run must show: no wrong close, good traffic served, no stall, no busy loop, no descriptor leak. */
export function assertClean(r: FuzzReport): void {
  assert.deepEqual(r.unexpected, [], `unexpected outcomes (seed ${r.seed})`);
  assert.deepEqual(r.goodFailures, [], `good traffic failed (seed ${r.seed})`);
  assert.ok(r.goodChecks > 0, 'no good traffic was checked');
  assert.ok(r.maxDelayMs < 200, `the event loop was blocked for ${r.maxDelayMs.toFixed(1)} ms (seed ${r.seed})`);
  for (const share of r.idleCpu) assert.ok(share < 0.5, `the listener used ${(share * 100).toFixed(0)}% CPU while nothing happened (seed ${r.seed})`);
  assert.ok(r.fdPeak - r.fdStart < 64, `descriptors grew from ${r.fdStart} to ${r.fdPeak} (seed ${r.seed})`);
  assert.ok(r.fdEnd <= r.fdStart + 2, `descriptors: ${r.fdStart} before, ${r.fdEnd} after (seed ${r.seed})`);
}
