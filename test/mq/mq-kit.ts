// The million-message run both queue kinds share (test/mq/mq-posix.test.ts,
// test/mq/mq-sysv.test.ts): two mq-peer processes open the queue, one floods it
// with `count` messages of `kinds` kinds, the other drains it and checks the
// order within each kind; both peers have exited when it resolves.
import { startPeer } from '../helpers.js';

export interface FloodResult {
  sent: { sent: number; ms: number };
  got: { received: number; misordered: number; mislabelled: number; perKind: number[]; ms: number };
}

/** `open(role)` is the command that opens the queue in a peer (role 'sender' or 'receiver'). */
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
