// A seeded fuzz of the shm: ring memory (test/shm-fuzz.ts): forged
// connectors corrupt what they share with a listener in this process, which
// must fail only their channels (ERR_IPCKIT_BAD_FRAME), quickly, without
// blocking its event loop, spinning or leaking, while a good peer's
// requests keep working. IPCKIT_FUZZ_SEED replays a sequence of mutations;
// IPCKIT_FUZZ_MUTATIONS sets the private-ring count (the shared-ring run
// does a fifth of it). npm run stress runs the same fuzz with 1,000,000.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClean, fuzzCount, fuzzSeed, fuzzShm, summary } from './shm-fuzz.js';

const seed = fuzzSeed();
const mutations = fuzzCount(10_000);

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
