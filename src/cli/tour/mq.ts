// Step: a POSIX message queue: messages come out by priority.
import { readFileSync } from 'node:fs';
import { mq } from '../../index.js';
import { defineStep, posixName } from './kit.js';

const PRIORITIES = [1, 5, 3, 9, 5];

const en = {
  title: 'POSIX message queue: highest priority first',
  create: (name: string, max: number, size: number) =>
    `mq_open creates the queue ${name}: at most ${max} messages of up to ${size} bytes. It is found by name, like a file.`,
  message: (n: number) => `message ${n}`,
  sent: (pid: number, list: string) => `A child (pid ${pid}) opens the queue by its name and sends five messages with priorities: ${list}.`,
  typed: (priority: number, text: string) => `${priority} «${text}»`,
  file: (path: string) => `The queue shows as a file, ${path}; reading it gives the kernel's account of the queue:`,
  receive: 'The parent receives them all: the highest priority comes first; equal priorities keep their sending order.',
  got: (priority: number, text: string) => `priority ${priority}: «${text}»`,
  remove: 'mq_unlink removes the name; the queue itself goes when its last descriptor is closed.',
};

const zh: typeof en = {
  title: 'POSIX 消息队列：优先级高的先出',
  create: (name: string, max: number, size: number) => `mq_open 创建队列 ${name}：最多 ${max} 条消息，每条最多 ${size} 字节。像文件一样按名字查找。`,
  message: (n: number) => `消息${n}`,
  sent: (pid: number, list: string) => `子进程（pid ${pid}）按名字打开队列，发送五条带优先级的消息：${list}。`,
  typed: (priority: number, text: string) => `${priority}「${text}」`,
  file: (path: string) => `队列以文件 ${path} 的形式出现；读取它可以看到内核对这个队列的记录：`,
  receive: '父进程把消息全部取出：优先级最高的先出来；优先级相同的保持发送顺序。',
  got: (priority: number, text: string) => `优先级 ${priority}：「${text}」`,
  remove: 'mq_unlink 删除名字；队列本身在最后一个描述符关闭时消失。',
};

export const mqStep = defineStep('mq', { en, zh }, async (t, m) => {
  const name = posixName(t.names, 'mq');
  const q = mq.open(name, { create: true, exclusive: true, maxMessages: 8, messageSize: 128 });
  t.defer(() => q.close());
  t.defer(() => mq.unlink(name));
  t.say(m.create(name, 8, 128), ['mq_open(O_CREAT|O_EXCL)']);

  const messages: Array<[number, string]> = PRIORITIES.map((priority, i) => [priority, m.message(i + 1)]);
  const child = t.child('mq', [name, JSON.stringify(messages)]);
  await child.next();
  await child.done();
  t.say(m.sent(child.pid, messages.map(([p, text]) => m.typed(p, text)).join(', ')), ['mq_open', 'mq_send × 5']);

  const dir = mq.mountPoint();
  if (dir) {
    const file = `${dir}${name}`;
    t.say(m.file(file), ['read']);
    t.show(readFileSync(file, 'utf8').trim().replace(/\s+/g, ' '));
  }

  t.say(m.receive, ['mq_receive × 5']);
  const received: string[] = [];
  for (const _ of messages) {
    const msg = await q.receive({ timeout: 5000, signal: t.signal });
    t.show(m.got(msg.priority, msg.data.toString()));
    received.push(`${msg.priority} ${msg.data.toString()}`);
  }
  // Array.prototype.sort is stable: equal priorities stay in sending order, as in the queue.
  const expected = [...messages].sort((a, b) => b[0] - a[0]).map(([p, text]) => `${p} ${text}`);
  if (received.join('|') !== expected.join('|')) throw new Error(`received ${received.join(', ')}`);
  mq.unlink(name);
  q.close();
  t.say(m.remove, ['mq_unlink', 'close']);
});
