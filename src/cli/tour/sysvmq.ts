// Step: a System V message queue, and choosing messages by type.
import { formatKey } from '../../core/errors.js';
import { IpcError, mq } from '../../index.js';
import { createExclusive, defineStep } from './kit.js';

const en = {
  title: 'System V message queue: receiving by type',
  create: (key: string, id: number) =>
    `msgget creates a queue for key ${key} (id ${id}). Any process that knows the key finds the same queue; the key here is made from our pid (ftok(3) makes one from a file path).`,
  message: (n: number) => `message ${n}`,
  sent: (pid: number, list: string) => `A child (pid ${pid}) gets the queue by the same key and sends four messages, each with a type: ${list}.`,
  typed: (type: number, text: string) => `type ${type} «${text}»`,
  stat: (n: number, bytes: number) => `The child has exited, but the messages stay in the kernel: ${n} messages, ${bytes} bytes.`,
  byType: (type: number) => `msgrcv with type ${type}: the first message of type ${type}, passing over the others.`,
  byMax: (type: number) => `msgrcv with type ${type}: the first message of the lowest type not above ${-type}.`,
  byOrder: 'msgrcv with type 0: simply the first message in the queue, whatever its type.',
  last: 'msgrcv with type 0 again: the one message left.',
  got: (type: number, text: string) => `received type ${type}: «${text}»`,
  none: (type: number) => `msgrcv with type ${type} and IPC_NOWAIT: no such message, so it fails at once instead of waiting.`,
  noneResult: (code: string) => `${code}: no message of that type`,
  remove: 'msgctl(IPC_RMID) removes the queue. It belongs to the kernel, not to a process: without this it would stay until reboot (ipcs -q lists it, ipcrm removes it).',
};

const zh: typeof en = {
  title: 'System V 消息队列：按类型接收',
  create: (key: string, id: number) =>
    `msgget 为键 ${key} 创建一个消息队列（id ${id}）。任何知道这个键的进程都能找到同一个队列；这里的键由我们的 pid 生成（ftok(3) 则由文件路径生成键）。`,
  message: (n: number) => `消息${n}`,
  sent: (pid: number, list: string) => `子进程（pid ${pid}）用同一个键取得队列，发送四条消息，每条都有类型：${list}。`,
  typed: (type: number, text: string) => `类型 ${type}「${text}」`,
  stat: (n: number, bytes: number) => `子进程已经退出，但消息仍留在内核中：${n} 条消息，共 ${bytes} 字节。`,
  byType: (type: number) => `msgrcv 类型 ${type}：取第一条类型为 ${type} 的消息，跳过其他消息。`,
  byMax: (type: number) => `msgrcv 类型 ${type}：在类型不大于 ${-type} 的消息中，取类型最小的第一条。`,
  byOrder: 'msgrcv 类型 0：直接取队列中的第一条消息，不管类型。',
  last: '再次 msgrcv 类型 0：取走剩下的最后一条。',
  got: (type: number, text: string) => `收到类型 ${type}：「${text}」`,
  none: (type: number) => `msgrcv 类型 ${type} 加 IPC_NOWAIT：没有这种消息，于是立即失败而不是等待。`,
  noneResult: (code: string) => `${code}：没有这种类型的消息`,
  remove: 'msgctl(IPC_RMID) 删除队列。队列属于内核而不属于某个进程：不删除的话，它会一直留到重启（ipcs -q 可以看到，ipcrm 可以删除）。',
};


export const sysvmqStep = defineStep('sysvmq', { en, zh }, async (t, m) => {
  const key = t.names.sysvKey;
  const q = createExclusive(() => mq.sysv.get(key, { create: true, exclusive: true }), key);
  t.defer(() => q.remove());
  t.say(m.create(formatKey(key), q.id), ['msgget(IPC_CREAT|IPC_EXCL)']);

  const messages: Array<[number, string]> = [3, 1, 2, 1].map((type, i) => [type, m.message(i + 1)]);
  const child = t.child('sysvmq', [key, JSON.stringify(messages)]);
  await child.next();
  await child.done();
  t.say(m.sent(child.pid, messages.map(([type, text]) => m.typed(type, text)).join(', ')), ['msgget', 'msgsnd × 4']);
  const stat = q.stat();
  t.say(m.stat(stat.qnum, stat.cbytes), ['msgctl(IPC_STAT)']);

  const received: string[] = [];
  const receive = async (type: number, say: string) => {
    t.say(say, [`msgrcv(msgtyp ${type})`]);
    const msg = await q.receive({ type, nowait: true });
    received.push(msg.data.toString());
    t.show(m.got(msg.type, msg.data.toString()));
  };
  await receive(2, m.byType(2));
  await receive(-2, m.byMax(-2));
  await receive(0, m.byOrder);
  await receive(0, m.last);
  const expected = [3, 2, 1, 4].map((n) => m.message(n));
  if (received.join('|') !== expected.join('|')) throw new Error(`received ${received.join(', ')}`);

  t.say(m.none(9), ['msgrcv(msgtyp 9, IPC_NOWAIT)']);
  let code = 'none';
  try {
    await q.receive({ type: 9, nowait: true });
  } catch (e) {
    if (!(e instanceof IpcError)) throw e;
    code = e.code;
  }
  t.show(m.noneResult(code));
  if (code !== 'ENOMSG') throw new Error(`expected ENOMSG, got ${code}`);
  q.remove();
  t.say(m.remove, ['msgctl(IPC_RMID)']);
});
