// Step: an ipckit channel over shared memory, with requests both ways.
import { once } from 'node:events';
import { readdirSync } from 'node:fs';
import { channel, type Channel } from '../../index.js';
import { defineStep } from './kit.js';

type Message = Record<string, unknown>;

const en = {
  title: 'An ipckit channel: messages and requests over shared memory',
  listen: (url: string, name: string) =>
    `channel.listen("${url}"): the parent listens on an abstract Unix socket, @ipckit-shm/${name} — a name without a file, gone when its process is.`,
  connect: (pid: number) =>
    `A child (pid ${pid}) connects. The child creates a sealed memfd holding two rings, one per direction, and passes it over the socket; both map it. The kernel also says who connected.`,
  peer: (pid: number, uid: number) => `the parent's channel: peer pid ${pid}, uid ${uid}`,
  question: 'what is your pid?',
  request: 'The child sends a request; the parent answers from its handler. Messages are written into the ring; a system call happens only to wake a side that went to sleep.',
  asked: (question: string, from: unknown) => `the parent's handler got «${question}» from pid ${String(from)}`,
  replied: (reply: string) => `the child got the reply ${reply}`,
  back: 'Requests go both ways: the parent asks the child to add up numbers; the reply is matched to its request by an id.',
  sum: (numbers: string, sum: unknown, pid: unknown) => `sum of ${numbers} = ${String(sum)}, answered by pid ${String(pid)}`,
  close: (left: number) => `The parent closes the channel; the child sees "peer-closed" and exits. Files left in /dev/shm by the channel: ${left}.`,
};

const zh: typeof en = {
  title: 'ipckit 通道：基于共享内存的消息与请求',
  listen: (url: string, name: string) => `channel.listen("${url}")：父进程在抽象 Unix 套接字 @ipckit-shm/${name} 上监听——它有名字但没有文件，进程结束就消失。`,
  connect: (pid: number) =>
    `子进程（pid ${pid}）发起连接。子进程创建一个密封的 memfd，里面是两个环形缓冲区，每个方向一个，通过套接字传给父进程；双方都映射它。内核同时告诉父进程连接者是谁。`,
  peer: (pid: number, uid: number) => `父进程的通道：对端 pid ${pid}，uid ${uid}`,
  question: '你的 pid 是多少？',
  request: '子进程发出一个请求；父进程在处理函数中回答。消息写入环形缓冲区；只有在需要唤醒已经睡眠的一方时才有系统调用。',
  asked: (question: string, from: unknown) => `父进程的处理函数收到来自 pid ${String(from)} 的「${question}」`,
  replied: (reply: string) => `子进程收到回复 ${reply}`,
  back: '请求可以双向进行：父进程请子进程把几个数相加；回复靠编号与请求对应。',
  sum: (numbers: string, sum: unknown, pid: unknown) => `${numbers} 之和 = ${String(sum)}，由 pid ${String(pid)} 回答`,
  close: (left: number) => `父进程关闭通道；子进程看到 "peer-closed" 后退出。通道在 /dev/shm 中留下的文件：${left} 个。`,
};

export const channelStep = defineStep('channel', { en, zh }, async (t, m) => {
  const name = `${t.names.prefix}channel`;
  const url = `shm:${name}`;
  const server = await channel.listen<Message>(url);
  t.defer(() => server.close());
  t.say(m.listen(url, name), ['socket(AF_UNIX)', 'bind(@…)', 'listen']);

  const connected = once(server, 'connection', { signal: t.signal }) as Promise<[Channel<Message>]>;
  const child = t.child('channel', [url, m.question]);
  const [ch] = await connected;
  t.defer(() => ch.close());
  t.say(m.connect(child.pid), ['memfd_create', 'fcntl(F_ADD_SEALS)', 'sendmsg(SCM_RIGHTS)', 'mmap', 'getsockopt(SO_PEERCRED)']);
  t.show(m.peer(ch.peer?.pid ?? -1, ch.peer?.uid ?? -1));

  let asked: Message | null = null;
  ch.onRequest((req) => {
    asked = req;
    return { pid: process.pid };
  });
  const { reply } = await child.next<{ reply: Message }>();
  t.say(m.request, ['send', 'recv']);
  const got = asked as Message | null;
  t.show(m.asked(String(got?.question), got?.from));
  t.show(m.replied(JSON.stringify(reply)));
  if (reply.pid !== process.pid) throw new Error(`reply ${JSON.stringify(reply)}`);

  const numbers = [1, 2, 3, 4];
  const answer = await ch.request({ numbers }, { timeout: 5000, signal: t.signal });
  t.say(m.back);
  t.show(m.sum(numbers.join(' + '), answer.sum, answer.pid));
  if (answer.sum !== 10 || answer.pid !== child.pid) throw new Error(`answer ${JSON.stringify(answer)}`);

  await ch.close();
  await child.done();
  await server.close();
  const left = readdirSync('/dev/shm').filter((f) => f.includes(name)).length;
  t.say(m.close(left), ['close']);
});
