// What a resolved send() means, on every transport: the sender is killed
// (SIGKILL) at random moments while its receiver is slow or stalled, and
// every message whose send() had resolved still arrives, in order and whole
// (test/channel/send-kill-runs.ts). npm run stress does 100 runs per transport.
// IPCKIT_FUZZ_SEED replays a sequence of receiver modes and delays (the
// interleaving depends on timing); IPCKIT_KILL_RUNS sets the runs.
import { sendKillTests } from './send-kill-runs.js';

sendKillTests(8, 60_000);
