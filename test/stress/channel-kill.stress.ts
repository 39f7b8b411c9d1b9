// npm run stress: SIGKILL of a channel peer at random points, 200 runs per
// transport (IPCKIT_KILL_RUNS overrides); the fast subset is test/channel/channel-kill.test.ts.
import { killTests } from '../channel/kill-runs.js';

killTests(200, 3_600_000);
