// npm run stress: jetstream:// channels through repeated server crashes: 3
// channels streaming 300,000 messages each way while nats-server is killed
// with SIGKILL and restarted on its store 5 times; every message exactly once,
// in order. The one-crash run is in test/channel/channel-jetstream.test.ts.
import { test } from 'node:test';
import { restartRun } from '../channel/jetstream-restart.js';
import { natsServerSkip } from '../channel/nats-server.js';

test('jetstream: 3 channels, 300,000 messages each way, nats-server killed (SIGKILL) and restarted 5 times: every message exactly once, in order', { timeout: 3_600_000, ...(natsServerSkip ? { skip: natsServerSkip } : {}) }, async () => {
  await restartRun({ channels: 3, count: 300_000, kills: 5 });
});
