// Publish/subscribe over core NATS: the wire format and the sequence check.
// A publisher of nats://host:port/TOPIC publishes to the subject
// ipckit-pub.TOPIC (a root of its own, so that the server's permissions can
// tell topics from channel names); every subscription of that subject gets a
// copy. Core NATS delivers at most once and drops silently (a slow consumer
// cut off, a server restart), so every message carries its publisher's id
// and a sequence number: a subscriber that sees a number jump knows how many
// of that publisher's messages it missed. Every NATS message:
//   byte 0       kind: 1 message, 2 end (the publisher closed), 3 tick (the
//                publisher went quiet: sent once, TICK_MS after its last
//                message); an end or a tick carries the count of messages
//                published so far as its sequence number, so a loss at the
//                end of a burst is seen too
//   bytes 1..8   publisher id: 8 random bytes, new for every publisher
//   bytes 9..12  sequence number (u32 LE), 0, 1, 2... per publisher
//   bytes 13..   the codec's bytes (a message only; an end or a tick has none)
import { randomBytes } from 'node:crypto';
import { badFrame } from './frame.js';

export const KIND_MESSAGE = 1;
export const KIND_END = 2;
export const KIND_TICK = 3;
/** How long a publisher waits after its last message before it sends a tick. */
export const TICK_MS = 500;
/** Bytes of the header in each NATS message: what maxMessageSize leaves of the server's max_payload. */
export const FANOUT_HEADER = 13;
/** Publishers a subscriber keeps a sequence number for; past it, the one heard of first is forgotten (a bound against a flood of ids). */
const MAX_PUBLISHERS = 10_000;

export const topicSubject = (topic: string): string => `ipckit-pub.${topic}`;

/** A publisher's header writer: its id, and its next sequence number. */
export class Sequencer {
  readonly id: Buffer = randomBytes(8);
  #seq = 0;

  /** The header of the next message (`kind` message: it takes a number) or of an end or a tick (the count so far), written into `into` at 0. */
  stamp(into: Buffer, kind: number): void {
    into[0] = kind;
    this.id.copy(into, 1);
    into.writeUInt32LE(kind === KIND_MESSAGE ? this.#nextSeq() : this.#seq, 9);
  }

  #nextSeq(): number {
    const s = this.#seq;
    this.#seq = (s + 1) >>> 0;
    return s;
  }
}

/** One received NATS message, checked: whose it is, and how many of that publisher's messages went missing before it. */
export interface Parsed {
  kind: typeof KIND_MESSAGE | typeof KIND_END | typeof KIND_TICK;
  publisher: string;
  seq: number;
  /** Messages of this publisher that never arrived (or were dropped here) between the last one taken and this one. */
  lost: number;
  /** The codec's bytes (a view into the NATS message). */
  body: Uint8Array;
}

/**
 * A subscriber's view of every publisher it heard: the sequence number it
 * expects next from each. The first message of a publisher sets it (a
 * subscriber that joins late cannot tell what it missed before that).
 */
export class SequenceCheck {
  readonly #maxBody: number;
  readonly #expected = new Map<string, number>();

  constructor(maxBody: number) {
    this.#maxBody = maxBody;
  }

  /** The message in `data`, or the error that says why it is not one (ERR_IPCKIT_BAD_FRAME). Changes nothing: taken() or dropped() does. */
  check(data: Uint8Array): Parsed | Error {
    const n = data.length;
    if (n < FANOUT_HEADER) return badFrame(`a message of ${n} bytes, shorter than the ${FANOUT_HEADER}-byte header`);
    const kind = data[0];
    if (kind !== KIND_MESSAGE && kind !== KIND_END && kind !== KIND_TICK) return badFrame(`unknown message kind ${kind}`);
    if (kind !== KIND_MESSAGE && n !== FANOUT_HEADER) return badFrame(`an ${kind === KIND_END ? 'end' : 'tick'} message of ${n} bytes`);
    if (n - FANOUT_HEADER > this.#maxBody) return badFrame(`a message of ${n - FANOUT_HEADER} bytes exceeds maxMessageSize (${this.#maxBody})`);
    const b = Buffer.from(data.buffer, data.byteOffset, n);
    const publisher = b.toString('hex', 1, 9);
    const seq = b.readUInt32LE(9);
    const expected = this.#expected.get(publisher);
    let lost = 0;
    if (expected !== undefined) {
      lost = (seq - expected) >>> 0;
      // Behind what was already taken: a replay or a forgery, never a loss.
      if (lost >= 0x80000000) return badFrame(`publisher ${publisher} sent sequence number ${seq} after ${(expected - 1) >>> 0}`);
    }
    return { kind, publisher, seq, lost, body: b.subarray(FANOUT_HEADER) };
  }

  /** The message was handed on: the next one expected is the one after it (after a tick, the one it names; after an end, none). */
  taken(p: Parsed): void {
    if (p.kind === KIND_END) this.#expected.delete(p.publisher);
    else this.#remember(p.publisher, p.kind === KIND_TICK ? p.seq : (p.seq + 1) >>> 0);
  }

  /** The message was dropped (the subscriber's queue is full): its number stays expected, so the next one shows the gap, this one included. */
  dropped(p: Parsed): void {
    if (!this.#expected.has(p.publisher)) this.#remember(p.publisher, p.seq);
  }

  #remember(publisher: string, next: number): void {
    if (!this.#expected.has(publisher) && this.#expected.size >= MAX_PUBLISHERS) {
      this.#expected.delete(this.#expected.keys().next().value!);
    }
    this.#expected.set(publisher, next);
  }
}
