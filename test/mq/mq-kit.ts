// What the tests of both queue kinds share (test/mq/mq-posix.test.ts,
// test/mq/mq-sysv.test.ts): the million-message flood, creating queues up to a
// lowered system-wide limit, a worker thread running the sync variants.
import assert from 'node:assert/strict';
import { Worker } from 'node:worker_threads';
import { fixturesDir, run, startPeer } from '../helpers.js';

export interface FloodResult {
  sent: { sent: number; ms: number };
  got: { received: number; misordered: number; mislabelled: number; perKind: number[]; ms: number };
}

/**
 * Two mq-peer processes open the queue, one floods it with `count` messages
 * of `kinds` kinds, the other drains it and checks the order within each kind;
 * both peers have exited when it resolves.
 * `open(role)` is the command that opens the queue in a peer (role 'sender' or 'receiver'). */
export async function floodAndDrain(kind: 'posix' | 'sysv', count: number, kinds: number, open: (role: 'sender' | 'receiver') => unknown): Promise<FloodResult> {
  const sender = startPeer('mq-peer');
  const receiver = startPeer('mq-peer');
  await Promise.all([sender.next(), receiver.next()]);
  sender.send(open('sender'));
  receiver.send(open('receiver'));
  await Promise.all([sender.next(), receiver.next()]);
  receiver.send({ op: 'drain', kind, count, kinds });
  sender.send({ op: 'flood', kind, count, kinds });
  const [sent, got] = await Promise.all([sender.next<FloodResult['sent']>(), receiver.next<FloodResult['got']>()]);
  sender.send({ op: 'exit' });
  receiver.send({ op: 'exit' });
  await Promise.all([sender.exited, receiver.exited]);
  return { sent, got };
}

export interface FillResult {
  created: number;
  error: { code: string; limit: unknown };
}

/**
 * In a private IPC namespace (so the rest of the machine is untouched) with
 * the sysctl file `limitFile` lowered to `value`, an mq-peer creates queues of
 * `kind` until one fails: how many it made and that failure's error.
 */
export async function fillToLimit(kind: 'posix' | 'sysv', limitFile: string, value: number, prefix: string): Promise<FillResult> {
  const unshare = run('sh', ['-c', 'command -v unshare']).trim();
  const ns = startPeer(unshare, ['-i', 'sh', '-c', `echo ${value} > ${limitFile} && exec "${process.execPath}" "${fixturesDir}/mq-peer.js"`]);
  assert.equal((await ns.next<{ ready?: boolean }>()).ready, true);
  ns.send({ op: 'fill', kind, prefix, max: 10 });
  const filled = await ns.next<FillResult>();
  ns.send({ op: 'exit' });
  await ns.exited;
  return filled;
}

/**
 * A worker thread running the script `code` with `workerData`: every message
 * it posts, in order, and its exit. Resolves once it posted the first one
 * (its 'ready').
 */
export async function startWorker(code: string, workerData: unknown): Promise<{ messages: unknown[]; exited: Promise<void> }> {
  const worker = new Worker(code, { eval: true, workerData });
  const messages: unknown[] = [];
  const exited = new Promise<void>((resolve, reject) => {
    worker.on('message', (m) => messages.push(m));
    worker.on('error', reject);
    worker.on('exit', () => resolve());
  });
  await new Promise<void>((r) => worker.once('message', () => r()));
  return { messages, exited };
}
