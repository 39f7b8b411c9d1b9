// Frames of 8 KiB and more copied out of a shm: ring go into blocks that the
// native side keeps for reuse (src/channel/kept.ts). A raw message in one has
// release(), which gives the block back at once; a frame that json or
// msgpack decoded goes back by itself; one that v8 decoded must not (its
// typed arrays view the frame), nor one a 'message' listener or a handler
// may still hold. Both ends are in this process: what is checked is the
// receiving side's memory, over shm: rings and a shared ring.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { channel, type Channel, type ChannelOptions } from 'ipckit';
import { T, tag } from './channel-pair.js';

const SIZES = [8 * 1024, 8 * 1024 + 1, 64 * 1024, 300 * 1024];

/** Message i of `size` bytes: every byte derived from i, so a reused block shows. */
function bytesOf(i: number, size: number): Buffer {
  const b = Buffer.alloc(size);
  for (let k = 0; k < size; k++) b[k] = (i * 131 + k * 7) & 255;
  return b;
}

async function connected(options: ChannelOptions<any>, sharedRing: boolean): Promise<{ tx: Channel<any>; rx: Channel<any>; close(): Promise<void> }> {
  const url = `shm:ipckit-test-kept-${tag()}`;
  const server = await channel.listen(url, { ...options, ...(sharedRing ? { sharedRing } : {}) });
  const accepted = new Promise<Channel<any>>((resolve) => server.once('connection', resolve));
  const rx = await channel.connect(url, options);
  const tx = await accepted;
  return {
    tx,
    rx,
    close: async () => {
      await tx.close();
      await rx.close();
      await server.close();
    },
  };
}

async function collectGarbage(): Promise<void> {
  setFlagsFromString('--expose-gc');
  (runInNewContext('gc') as () => void)();
  await new Promise((r) => setImmediate(r));
}

describe('kept frames on shm:', () => {
  for (const sharedRing of [false, true]) {
    const where = sharedRing ? 'listener with a shared ring' : 'ring pair';
    // The listener's side (tx) writes; on a shared-ring listener, the connector's frames
    // go through the shared ring, so the connector sends and the listener's side reads there.
    test(`${where}: release() empties a large raw message and later messages are intact; small ones have none`, T, async () => {
      const { tx, rx, close } = await connected({ codec: 'raw', maxMessageSize: 1 << 20 }, sharedRing);
      const [from, to] = sharedRing ? [rx, tx] : [tx, rx];
      try {
        const kept: Buffer[] = [];
        for (let round = 0; round < 40; round++) {
          const size = SIZES[round % SIZES.length]!;
          await from.send(bytesOf(round, size));
          const m = (await to.next()).value as Buffer & { release?: () => void };
          assert.ok(m.equals(bytesOf(round, size)), `message ${round} (${size} bytes) intact`);
          assert.equal(typeof m.release, 'function', `a ${size}-byte message has release()`);
          if (round % 4 === 3) kept.push(m);
          else {
            m.release!();
            assert.equal(m.length, 0, 'empty after release()');
            m.release!();
          }
        }
        await from.send(Buffer.alloc(100, 1));
        assert.equal(((await to.next()).value as { release?: unknown }).release, undefined, 'below 8 KiB: a plain Buffer');
        // Messages not released are never reused, also across collections.
        await collectGarbage();
        kept.forEach((m, k) => assert.ok(m.equals(bytesOf(4 * k + 3, SIZES[3]!)), `kept message ${4 * k + 3} unchanged`));
      } finally {
        await close();
      }
    });

    for (const codec of ['json', 'msgpack', 'v8'] as const) {
      test(`${where}: ${codec}: large decoded messages stay intact while later ones arrive`, T, async () => {
        const { tx, rx, close } = await connected({ codec, maxMessageSize: 1 << 20 }, sharedRing);
        const [from, to] = sharedRing ? [rx, tx] : [tx, rx];
        try {
          const kept: unknown[] = [];
          const sent: unknown[] = [];
          for (let i = 0; i < 30; i++) {
            const size = SIZES[i % SIZES.length]!;
            // v8 carries typed arrays (which its decoder makes as views of the frame); json and msgpack a string.
            const value = codec === 'v8' ? { i, bytes: new Uint8Array(bytesOf(i, size)) } : { i, text: bytesOf(i, size).toString('base64') };
            sent.push(value);
            await from.send(value);
            kept.push((await to.next()).value);
          }
          await collectGarbage();
          assert.deepEqual(kept, sent);
        } finally {
          await close();
        }
      });
    }
  }

  test('receiveEach in place over messages that waited in the inbox: each is valid during its call, then given back', T, async () => {
    const { tx, rx, close } = await connected({ codec: 'raw', maxMessageSize: 1 << 20 }, false);
    try {
      for (let i = 0; i < 8; i++) await tx.send(bytesOf(i, 64 * 1024));
      // No reader yet: what the link read meanwhile waits in the inbox (the rest in the ring).
      assert.equal(await rx.receiveEach(() => {}, { max: 1 }), 1);
      const seen: Buffer[] = [];
      let i = 1;
      while (i < 8) {
        i += await rx.receiveEach((bytes: Buffer, start: number, end: number) => {
          assert.ok(bytes.subarray(start, end).equals(bytesOf(seen.length + 1, 64 * 1024)));
          seen.push(bytes);
        }, { inPlace: true, timeout: 10_000 });
      }
      assert.equal(seen.length, 7);
      // From the inbox: the message's own Buffer, given back after its call; from the ring: the ring's bytes.
      assert.ok(seen.every((b) => b.length === 0 || b.length > 64 * 1024));
    } finally {
      await close();
    }
  });
});
