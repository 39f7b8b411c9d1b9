// npm run stress: the parametrised channel suite (test/channel/channel-suite.ts)
// over every transport of test/channel/channel-pair.ts, with 1,000,000 messages each
// way in its ordering tests (send() and sendBatch()) instead of npm test's 100,000.
process.env.IPCKIT_SUITE_MESSAGES ??= '1000000';
const { TRANSPORTS } = await import('../channel/channel-pair.js');
const { defineTransportSuite } = await import('../channel/channel-suite.js');
defineTransportSuite(TRANSPORTS);
