// Step: one socketpair between parent and child, used in both directions at once.
import { createInterface } from 'node:readline';
import { socketpair } from '../../index.js';
import { defineStep } from './kit.js';

const en = {
  title: 'socketpair: one connection, both directions',
  create: (a: number, b: number) =>
    `The parent creates a connected pair of Unix stream sockets, fd ${a} and fd ${b}. Unlike a pipe, each end both reads and writes.`,
  spawn: (pid: number) => `A child (pid ${pid}) inherits one end as fd 3; the parent closes its copy of that end and keeps the other.`,
  both: 'Both sides write at once, neither waiting for the other: the two directions are independent (full duplex).',
  parentHello: 'hello from the parent',
  childHello: 'hello from the child',
  parentGot: (line: string) => `the parent read: «${line}»`,
  childGot: (line: string) => `the child read: «${line}»`,
  squares: (asked: string, got: string) => `Question and answer over the same descriptor: the parent sends ${asked}, the child answers with their squares: ${got}.`,
  shutdown: 'The parent shuts down its sending direction: the child reads end-of-file, closes its end and exits.',
  exited: (code: number | null) => `exit status ${code}`,
};

const zh: typeof en = {
  title: 'socketpair（流管道）：一条连接，双向通信',
  create: (a: number, b: number) => `父进程创建一对相互连接的 Unix 流式套接字：fd ${a} 和 fd ${b}。与管道不同，每一端都既能读又能写。`,
  spawn: (pid: number) => `子进程（pid ${pid}）把其中一端继承为 fd 3；父进程关闭自己的这一端副本，保留另一端。`,
  both: '双方同时写，谁也不等谁：两个方向互不影响（全双工）。',
  parentHello: '父进程向你问好',
  childHello: '子进程向你问好',
  parentGot: (line: string) => `父进程读到：「${line}」`,
  childGot: (line: string) => `子进程读到：「${line}」`,
  squares: (asked: string, got: string) => `同一个描述符上一问一答：父进程发送 ${asked}，子进程回复它们的平方 ${got}。`,
  shutdown: '父进程关闭自己的发送方向：子进程读到 EOF，关闭自己的一端并退出。',
  exited: (code: number | null) => `退出状态 ${code}`,
};

export const socketpairStep = defineStep('socketpair', { en, zh }, async (t, m) => {
  const [ours, theirs] = socketpair();
  t.defer(() => {
    ours.destroy();
    theirs.destroy();
  });
  t.say(m.create(ours.fd, theirs.fd), ['socketpair(AF_UNIX, SOCK_STREAM)']);
  const child = t.child('socketpair', [m.childHello], { fds: [theirs.fd] });
  theirs.destroy();
  t.say(m.spawn(child.pid), ['fork', 'dup2', 'execve', 'close']);

  ours.setEncoding('utf8');
  const lines = createInterface({ input: ours })[Symbol.asyncIterator]();
  const nextLine = async () => {
    const r = await lines.next();
    if (r.done) throw new Error('the child closed the socket early');
    return r.value;
  };
  ours.write(`${m.parentHello}\n`);
  t.say(m.both, ['write', 'read']);
  t.show(m.parentGot(await nextLine()));
  t.show(m.childGot(String((await child.next<{ received: string }>()).received)));

  const numbers = [2, 3, 12];
  for (const n of numbers) ours.write(`${n}\n`);
  const answers: string[] = [];
  for (const _ of numbers) answers.push(await nextLine());
  t.say(m.squares(numbers.join(', '), answers.join(', ')), ['write', 'read']);
  if (answers.join() !== numbers.map((n) => n * n).join()) throw new Error(`wrong answers: ${answers.join()}`);

  ours.end();
  t.say(m.shutdown, ['shutdown(SHUT_WR)', 'read → 0', 'close', 'wait4']);
  await child.done();
  t.show(m.exited(0));
});
