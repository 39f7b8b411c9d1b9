// npm run stress: the parametrised channel suite (test/channel-suite.ts)
// over every transport of test/channel-pair.ts, with 1,000,000 messages each
// way in its ordering tests (send() and sendBatch()) instead of npm test's 100,000.
process.env.IPCKIT_SUITE_MESSAGES ??= '1000000';
const { TRANSPORTS } = await import('../channel-pair.js');
const { defineTransportSuite } = await import('../channel-suite.js');
defineTransportSuite(TRANSPORTS);
