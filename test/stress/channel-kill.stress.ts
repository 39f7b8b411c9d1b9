// npm run stress: SIGKILL of a channel peer at random points, 200 runs per
// transport (IPCKIT_KILL_RUNS overrides); the fast subset is test/channel/channel-kill.test.ts.
import { test } from 'node:test';
import { KILL_TRANSPORTS, assertKillReport, killCount, killRuns } from '../channel/kill-runs.js';
import { fuzzSeed } from '../channel/shm-fuzz.js';

const seed = fuzzSeed();
const runs = killCount(200);

KILL_TRANSPORTS.forEach((transport, k) => {
  test(`channel over ${transport}: ${runs} peers killed (SIGKILL) at random points while streaming: peer-lost within 2 s, frames before it in order and whole, nothing leaked`, { timeout: 3_600_000 }, async (t) => {
    const s = (seed + k) >>> 0;
    t.diagnostic(`seed ${s} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
    assertKillReport(await killRuns(transport, runs, s, (line) => t.diagnostic(line)), runs);
  });
});
