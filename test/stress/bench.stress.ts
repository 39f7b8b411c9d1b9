// npm run stress: the benchmark harness's tests (test/bench/bench.test.ts)
// with every registered case run from fresh processes, where npm test runs one
// case of each case module.
process.env.IPCKIT_BENCH_EVERY_CASE ??= '1';
await import('../bench/bench.test.js');
