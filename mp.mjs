// N producer processes -> one listener, raw 64 B, aggregate one-way msg/s and the listener's CPU time.
import { channel } from 'ipckit';
import { spawn } from 'node:child_process';
const [N, M] = [Number(process.argv[2] ?? 4), Number(process.argv[3] ?? 500000)];
if (process.argv[4] === 'peer') {
  const ch = await channel.connect(process.argv[5], { codec: 'raw' });
  const b = Buffer.alloc(64);
  let last;
  for (let i = 0; i < M; i++) { last = ch.send(b); if ((i & 1023) === 1023) await last; }
  await last; await ch.close(); process.exit(0);
}
const url = `shm:mp-${process.pid}`;
const server = await channel.listen(url, { codec: 'raw', sharedRing: process.env.SHARED === '1' });
for (let i = 0; i < N; i++) spawn(process.execPath, [...(process.env.PROF ? ['--cpu-prof', '--cpu-prof-dir=/tmp/mp/prof'] : []), process.argv[1], String(N), String(M), 'peer', url], { stdio: 'inherit' });
let t0, c0, done = 0, total = 0;
for await (const ch of server) {
  if (!t0) { t0 = performance.now(); c0 = process.cpuUsage(); }
  (async () => {
    for (;;) { const b = await ch.receiveBatch(); if (b.length === 0) break; total += b.length; }
    if (++done === N) {
      const s = (performance.now() - t0) / 1000, cpu = process.cpuUsage(c0);
      console.log(`N=${N} shared=${process.env.SHARED} ${(total / s / 1e6).toFixed(2)} M msg/s, listener cpu ${((cpu.user + cpu.system) / 1e6 / s * 100).toFixed(0)}%`);
      await server.close();
    }
  })();
}
