// SIGKILL of a channel peer at random points (test/channel/kill-runs.ts), a few runs
// per transport: the listener's channel closes with 'peer-lost' (or
// 'peer-closed' if the peer had finished) within 2 s, what arrived before is
// in order and whole, and nothing is left behind. npm run stress does 200
// runs per transport. IPCKIT_FUZZ_SEED replays a sequence of counts and
// delays (the interleaving depends on timing); IPCKIT_KILL_RUNS sets the runs.
import { killTests } from './kill-runs.js';

killTests(10, 120_000);
