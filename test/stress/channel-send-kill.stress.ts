// npm run stress: senders killed (SIGKILL) at random moments, 100 runs per
// transport (IPCKIT_KILL_RUNS overrides): every message whose send() resolved
// arrives; the fast subset is test/channel-send-kill.test.ts.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { killCount } from '../kill-runs.js';
import { SEND_KILL_TRANSPORTS, sendKillRuns } from '../send-kill-runs.js';
import { fuzzSeed } from '../shm-fuzz.js';

const seed = fuzzSeed();
const runs = killCount(100);

SEND_KILL_TRANSPORTS.forEach((transport, k) => {
  test(`channel over ${transport}: ${runs} senders killed (SIGKILL) at random moments: every message whose send() resolved arrives, in order`, { timeout: 3_600_000 }, async (t) => {
    const s = (seed + k) >>> 0;
    const r = await sendKillRuns(transport, runs, s);
    t.diagnostic(`seed ${s} (IPCKIT_FUZZ_SEED=${seed} replays it): ${r.resolved} sends resolved, ${r.received} messages received; ${r.lost} lost in ${r.lossyRuns} of ${r.runs} runs`);
    assert.deepEqual(r.problems, []);
    assert.equal(r.runs, runs);
  });
});
