// A seeded fuzz of the shm: ring memory (test/channel/shm-fuzz.ts): forged
// connectors corrupt what they share with a listener in this process, which
// must fail only their channels (ERR_IPCKIT_BAD_FRAME), quickly, without
// blocking its event loop, spinning or leaking, while a good peer's
// requests keep working. IPCKIT_FUZZ_SEED replays a sequence of mutations;
// IPCKIT_FUZZ_MUTATIONS sets the private-ring count (the shared-ring run
// does a fifth of it). npm run stress runs the same fuzz with 1,000,000.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { channel, type Channel, type CloseInfo } from 'ipckit';
import { forgeShm } from './forge.js';
import { assertClean, fuzzCount, fuzzSeed, fuzzShm, summary } from './shm-fuzz.js';

const seed = fuzzSeed();
const mutations = fuzzCount(4_000);

test(`shm: ring fuzz, private rings: ${mutations} mutations of ring 0 by forged connectors; only their channels fail (ERR_IPCKIT_BAD_FRAME), a good peer is served throughout`, { timeout: 120_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
  const r = await fuzzShm({ seed, mutations, shared: false, log: (l) => t.diagnostic(l) });
  t.diagnostic(summary(r));
  assertClean(r);
  assert.equal(r.mutations, mutations);
  // The mutations did reach the reader: most forged channels failed, and valid records were delivered.
  assert.ok((r.closes['forged error:ERR_IPCKIT_BAD_FRAME'] ?? 0) > mutations / 10, 'too few corruptions detected');
  assert.ok(r.messages > mutations, `only ${r.messages} messages delivered`);
});

test(`shm: ring fuzz, shared ring: ${Math.ceil(mutations / 5)} mutations of the shared ring; its channels fail together, newcomers get a fresh ring`, { timeout: 120_000 }, async (t) => {
  const sharedSeed = (seed + 1) >>> 0;
  t.diagnostic(`seed ${sharedSeed} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
  const r = await fuzzShm({ seed: sharedSeed, mutations: Math.ceil(mutations / 5), shared: true, log: (l) => t.diagnostic(l) });
  t.diagnostic(summary(r));
  assertClean(r);
  assert.ok((r.closes['bystander error:ERR_IPCKIT_BAD_FRAME'] ?? 0) > 0, 'the shared ring never failed');
});

test('an error reply whose body is not JSON (for a request never sent) is ERR_IPCKIT_BAD_FRAME, whatever the codec', { timeout: 30_000 }, async () => {
  for (const codec of ['raw', 'json'] as const) {
    const name = `ipckit-test-fuzz-${process.pid}-${codec}`;
    const server = await channel.listen<any>(`shm:${name}`, { codec, maxMessageSize: 1024 });
    const conn = server[Symbol.asyncIterator]().next();
    const forged = await forgeShm(name, { helloExtra: { codec } });
    const ch = (await conn).value as Channel<any>;
    const closed = new Promise<CloseInfo>((r) => (ch.closeInfo ? r(ch.closeInfo) : ch.once('close', r)));
    // Kind 3 (error reply), correlation id 7, body "xyz".
    forged.publish(forged.place(Uint8Array.of(3, 7, 0, 0, 0, 0x78, 0x79, 0x7a)));
    const info = await closed;
    assert.equal(info.reason, 'error');
    assert.equal((info.error as { code?: string }).code, 'ERR_IPCKIT_BAD_FRAME', `${codec}: ${info.error?.message}`);
    assert.match(info.error!.message, /error reply whose body is not JSON/);
    forged.close();
    forged.mem.close();
    await server.close();
  }
});
