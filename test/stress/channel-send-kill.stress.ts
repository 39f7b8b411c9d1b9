// npm run stress: senders killed (SIGKILL) at random moments, 100 runs per
// transport (IPCKIT_KILL_RUNS overrides): every message whose send() resolved
// arrives; the fast subset is test/channel/channel-send-kill.test.ts.
import { sendKillTests } from '../channel/send-kill-runs.js';

sendKillTests(100, 3_600_000);
