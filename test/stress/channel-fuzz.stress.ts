// npm run stress: the shm: ring fuzz of test/channel/channel-fuzz.test.ts with
// 1,000,000 mutations of private rings and 200,000 of a shared ring
// (IPCKIT_FUZZ_MUTATIONS sets the first, the second is a fifth of it;
// IPCKIT_FUZZ_SEED replays a sequence of mutations).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assertClean, fuzzCount, fuzzSeed, fuzzShm, summary } from '../channel/shm-fuzz.js';

const seed = fuzzSeed();
const mutations = fuzzCount(1_000_000);
const progress = (t: { diagnostic(line: string): void }) => (line: string) => {
  // One line per 50,000 mutations.
  if (/^\d+ mutations/.test(line) && Number(line.split(' ')[0]) % 50_000 !== 0) return;
  t.diagnostic(line);
  console.log(line);
};

test(`shm: ring fuzz, private rings: ${mutations} mutations`, { timeout: 4 * 3_600_000 }, async (t) => {
  t.diagnostic(`seed ${seed} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
  const r = await fuzzShm({ seed, mutations, shared: false, log: progress(t) });
  t.diagnostic(summary(r));
  assertClean(r);
  assert.equal(r.mutations, mutations);
});

test(`shm: ring fuzz, shared ring: ${Math.ceil(mutations / 5)} mutations`, { timeout: 4 * 3_600_000 }, async (t) => {
  const sharedSeed = (seed + 1) >>> 0;
  t.diagnostic(`seed ${sharedSeed} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
  const r = await fuzzShm({ seed: sharedSeed, mutations: Math.ceil(mutations / 5), shared: true, log: progress(t) });
  t.diagnostic(summary(r));
  assertClean(r);
});
