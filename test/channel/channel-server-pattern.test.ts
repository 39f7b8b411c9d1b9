// The README's server pattern, unchanged, against 50 connections on every
// transport that has a listener: the handler is attached in the server loop,
// and each client's first act is a request. Every first request must be
// answered: a request that arrives before onRequest() waits for it (bounded
// by the requester's timeout), whatever the transport. Clients come from two
// processes, eight connections in flight in each, so handshakes, requests
// and closes overlap while the loop serves one channel at a time.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { channel, type ChannelOptions } from 'ipckit';
import { startPeer } from '../helpers.js';
import { T, TRANSPORTS, listenExtras, servers, transportSkip, urlFor, type Transport } from './channel-pair.js';

const CONNECTIONS = 50;
const PEERS = 2;
const IN_FLIGHT = 8;

const skipped: Partial<Record<Transport, string>> = {
  pipe: 'pipe: has no listener: channel.fork() makes one channel per child',
  fifo: 'fifo: is one-way: it carries no requests',
};

/** What travels both ways (one type each way comes with typed channels). */
interface Job {
  id?: number;
  hello?: number;
  done?: number;
  at?: Date;
}

for (const t of TRANSPORTS) {
  describe(`the README server pattern over ${t}`, { skip: transportSkip(t) }, () => {
    test(`${CONNECTIONS} connections whose first act is request(): every first request is answered`, { ...T, skip: skipped[t] ?? false }, async () => {
      const options: ChannelOptions<Job> = t === 'shm-nospin' ? { codec: 'v8', spin: false } : { codec: 'v8' };
      const server = await channel.listen<Job>(urlFor(t as Exclude<Transport, 'pipe'>), { ...options, ...listenExtras(t) });
      servers.add(server);
      const share = CONNECTIONS / PEERS;
      const peers = Array.from({ length: PEERS }, (_, p) =>
        startPeer('server-pattern-peer', [server.url, JSON.stringify(options), String(p * share), String(share), String(IN_FLIGHT)]),
      );
      // A peer that dies (it prints why) makes no more connections: fail instead of waiting for them.
      const died = Promise.race(peers.map((p) => p.exited.then(({ code, signal }) => (code === 0 ? new Promise<never>(() => {}) : Promise.reject(new Error(`a client process exited (${signal ?? code})`))))));
      died.catch(() => {});
      const hellos: number[] = [];
      const serve = async () => {
        let served = 0;
        // As in the README: attach the handler, then read the channel to its end.
        for await (const ch of server) {
          ch.onRequest(async (job) => ({ done: job.id, at: new Date() }));
          for await (const msg of ch) hellos.push(msg.hello!);
          if (++served === CONNECTIONS) break;
        }
      };
      await Promise.race([serve(), died]);
      const reports = await Promise.all(peers.map((p) => p.next<{ problems: string[] }>()));
      await Promise.all(peers.map((p) => p.exited));
      await server.close();
      servers.delete(server);
      assert.deepEqual(reports.flatMap((r) => r.problems), []);
      assert.deepEqual(hellos.sort((a, b) => a - b), Array.from({ length: CONNECTIONS }, (_, i) => i));
    });
  });
}
