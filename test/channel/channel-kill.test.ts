// SIGKILL of a channel peer at random points (test/channel/kill-runs.ts), a few runs
// per transport: the listener's channel closes with 'peer-lost' (or
// 'peer-closed' if the peer had finished) within 2 s, what arrived before is
// in order and whole, and nothing is left behind. npm run stress does 200
// runs per transport. IPCKIT_FUZZ_SEED replays a sequence of counts and
// delays (the interleaving depends on timing); IPCKIT_KILL_RUNS sets the runs.
import { test } from 'node:test';
import { KILL_TRANSPORTS, assertKillReport, killCount, killRuns } from './kill-runs.js';
import { fuzzSeed } from './shm-fuzz.js';

const seed = fuzzSeed();
const runs = killCount(10);

KILL_TRANSPORTS.forEach((transport, k) => {
  test(`channel over ${transport}: ${runs} peers killed (SIGKILL) at random points while streaming: peer-lost within 2 s, frames before it in order and whole, nothing leaked`, { timeout: 120_000 }, async (t) => {
    const s = (seed + k) >>> 0;
    t.diagnostic(`seed ${s} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
    assertKillReport(await killRuns(transport, runs, s, (line) => t.diagnostic(line)), runs);
  });
});
