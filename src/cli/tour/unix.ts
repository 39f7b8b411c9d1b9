// Step: a Unix domain stream socket: bind, listen, accept, connect, both ways.
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { unix, type PeerCredentials } from '../../index.js';
import { defineStep } from './kit.js';

const en = {
  title: 'Unix domain socket: bind, listen, accept, connect',
  listen: (path: string) =>
    `The parent creates a stream socket, binds it to the path ${path} and listens: the kernel now queues connections for it.`,
  connect: (pid: number) =>
    `A child (pid ${pid}) creates its own socket and connects to that path. The parent's accept returns a new socket for this one connection; the listening socket goes on listening.`,
  peer: 'The kernel says who is at the other end of the connection — no need to trust what the peer claims:',
  cred: (c: PeerCredentials) => `pid ${c.pid}, uid ${c.uid}, gid ${c.gid}`,
  question: 'hello, server',
  answer: (pid: number) => `hello, client ${pid}`,
  exchange: 'Each side writes and the other reads, over the one connection:',
  childSaid: (text: string) => `child → parent: «${text}»`,
  parentSaid: (text: string) => `parent → child: «${text}», and the child read it`,
  close: (gone: boolean) =>
    `Both close. Closing a socket does not delete its file; the parent's close removes it (${gone ? 'gone now' : 'still there'}). Sockets also work between machines: TCP is the same calls with another address.`,
};

const zh: typeof en = {
  title: 'Unix 域套接字：bind、listen、accept、connect',
  listen: (path: string) => `父进程创建一个流式套接字，把它绑定（bind）到路径 ${path} 并开始监听（listen）：内核开始为它排队连接请求。`,
  connect: (pid: number) =>
    `子进程（pid ${pid}）创建自己的套接字并连接（connect）到这个路径。父进程的 accept 为这一条连接返回一个新的套接字；监听套接字继续监听。`,
  peer: '内核告诉父进程连接另一端是谁——不必相信对方自称的身份：',
  cred: (c: PeerCredentials) => `pid ${c.pid}，uid ${c.uid}，gid ${c.gid}`,
  question: '你好，服务器',
  answer: (pid: number) => `你好，客户端 ${pid}`,
  exchange: '在同一条连接上，一方写，另一方读：',
  childSaid: (text: string) => `子进程 → 父进程：「${text}」`,
  parentSaid: (text: string) => `父进程 → 子进程：「${text}」，子进程读到了`,
  close: (gone: boolean) =>
    `双方关闭连接。关闭套接字并不会删除它的文件；父进程的 close 负责删除（${gone ? '现在已删除' : '仍然存在'}）。套接字也能跨机器通信：TCP 用的是同样的调用，只是地址不同。`,
};

export const unixStep = defineStep('unix', { en, zh }, async (t, m) => {
  const path = join(t.names.workDir, 'server.sock');
  const server = await unix.listen(path);
  t.defer(() => server.close());
  t.say(m.listen(path), ['socket(AF_UNIX, SOCK_STREAM)', 'bind', 'listen']);

  const accepted = once(server, 'connection', { signal: t.signal }) as Promise<[Socket & { peerCredentials(): PeerCredentials }]>;
  const child = t.child('unix', [path, m.question]);
  const [conn] = await accepted;
  t.defer(() => conn.destroy());
  t.say(m.connect(child.pid), ['socket', 'connect', 'accept4']);
  t.say(m.peer, ['getsockopt(SO_PEERCRED)']);
  const cred = conn.peerCredentials();
  t.show(m.cred(cred));
  if (cred.pid !== child.pid) throw new Error(`SO_PEERCRED says pid ${cred.pid}`);

  const lines = createInterface({ input: conn })[Symbol.asyncIterator]();
  const question = (await lines.next()).value as string;
  const answer = m.answer(child.pid);
  conn.write(`${answer}\n`);
  const { received } = await child.next<{ received: string }>();
  t.say(m.exchange, ['write', 'read']);
  t.show(m.childSaid(question));
  t.show(m.parentSaid(received));
  if (question !== m.question || received !== answer) throw new Error(`exchanged ${JSON.stringify([question, received])}`);

  await child.done();
  conn.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  t.say(m.close(!existsSync(path)), ['close', 'unlink']);
});
