// Many writers, one shm: listener: aggregate one-way throughput with a ring
// pair per connection (default) and with a shared ring (sharedRing), in the
// same run. Not part of `npm run bench` (whose cases are pairs of processes).
// Every message carries its writer and sequence number, and the listener
// checks that each connection delivered all of its writer's messages, in
// order, once: a trial that lost, repeated or reordered one fails (exit 1).
//
//   node scripts/bench-writers.mjs [writers=1,4,8] [messages per writer=400000] [size=64]
import { spawn } from 'node:child_process';
import { channel } from 'ipckit';

const [writersArg = '1,4,8', countArg = '400000', sizeArg = '64'] = process.argv.slice(2);
const count = Number(countArg);
const size = Number(sizeArg);
if (!(size >= 8)) throw new RangeError('size must be at least 8 bytes (each message carries its writer and sequence number)');

if (process.env.BENCH_WRITER_URL) {
  // A writer: `count` messages of `size` bytes, awaiting every 1024th send (backpressure).
  const ch = await channel.connect(process.env.BENCH_WRITER_URL, { codec: 'raw' });
  const msg = Buffer.alloc(size);
  msg.writeUInt32LE(Number(process.env.BENCH_WRITER_ID), 0);
  let last;
  for (let i = 0; i < count; i++) {
    // send() copies the bytes into the ring before it returns: the buffer can be stamped again at once.
    msg.writeUInt32LE(i, 4);
    last = ch.send(msg);
    if ((i & 1023) === 1023) await last;
  }
  await last;
  await ch.close();
  process.exit(0);
}

async function trial(writers, sharedRing) {
  const url = `shm:ipckit-bench-writers-${process.pid}-${writers}-${sharedRing ? 's' : 'p'}`;
  const server = await channel.listen(url, { codec: 'raw', sharedRing });
  const children = Array.from({ length: writers }, (_, id) =>
    spawn(process.execPath, [process.argv[1], writersArg, countArg, sizeArg], { stdio: 'inherit', env: { ...process.env, BENCH_WRITER_URL: url, BENCH_WRITER_ID: String(id) } }),
  );
  let start = 0;
  let cpuStart;
  let received = 0;
  const readers = [];
  const seen = new Set();
  for await (const ch of server) {
    if (readers.length === 0) {
      start = performance.now();
      cpuStart = process.cpuUsage();
    }
    readers.push(
      (async () => {
        let writer = -1;
        let next = 0;
        for (let batch = await ch.receiveBatch(); batch.length > 0; batch = await ch.receiveBatch()) {
          for (const m of batch) {
            if (writer < 0) writer = m.readUInt32LE(0);
            const seq = m.readUInt32LE(4);
            if (m.length !== size || m.readUInt32LE(0) !== writer || seq !== next) {
              throw new Error(`writer ${writer}: message ${next} arrived as writer ${m.readUInt32LE(0)} #${seq} (${m.length} bytes)`);
            }
            next++;
          }
          received += batch.length;
        }
        if (next !== count || seen.has(writer)) throw new Error(`writer ${writer}: ${next} of ${count} messages arrived${seen.has(writer) ? ' on a second connection' : ''}`);
        seen.add(writer);
      })(),
    );
    if (readers.length === writers) break;
  }
  await Promise.all(readers);
  const seconds = (performance.now() - start) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  await server.close();
  await Promise.all(children.map((c) => (c.exitCode !== null ? null : new Promise((r) => c.once('exit', r)))));
  return { msgsPerSec: received / seconds, listenerCpu: (cpu.user + cpu.system) / 1e6 / seconds };
}

console.log(`| writers | rings | msg/s (all writers) | listener CPU |\n|--:|---|--:|--:|`);
for (const writers of writersArg.split(',').map(Number)) {
  for (const sharedRing of [false, true]) {
    const r = await trial(writers, sharedRing);
    console.log(`| ${writers} | ${sharedRing ? 'shared (MPSC)' : 'per connection'} | ${Math.round(r.msgsPerSec).toLocaleString('en-US')} | ${(r.listenerCpu * 100).toFixed(0)}% |`);
  }
}
