// Step: an anonymous pipe between a parent and its child, then popen in both
// directions.
import { text } from 'node:stream/consumers';
import { pipe, popen } from '../../index.js';
import { defineStep } from './kit.js';

const en = {
  title: 'Anonymous pipes and popen',
  create: (fds: string) =>
    `The parent creates two pipes (${fds}). A pipe carries bytes one way only, so the question and the answer need one each.`,
  spawn: (pid: number) =>
    `A child (pid ${pid}) inherits the read end of the first pipe as fd 3 and the write end of the second as fd 4. The parent closes its copies of those two ends.`,
  why: 'Why close them: a reader sees end-of-file only once every write end is closed. A forgotten copy in the parent would keep the child reading forever.',
  question: 'hello, child: this came through a pipe',
  write: (q: string) => `The parent writes «${q}» into the first pipe and closes its write end.`,
  answer: 'The child reads until end-of-file and answers on the second pipe; the parent reads that until end-of-file too.',
  answered: (pid: number, bytes: number, q: string) => `child ${pid} read ${bytes} bytes: «${q}»`,
  reaped: (code: number | null) => `The child exits with status ${code}; Node collects it (waitpid), so no zombie stays behind.`,
  popenR: 'popen(…, "r"): a shell runs a command whose standard output is a pipe to us. We read what it prints.',
  popenRCommand: 'echo "shell $$ says hello"; uname -sr',
  popenROut: (line: string) => `read from the pipe: ${line}`,
  popenW: 'popen("sort", "w"): we write three lines into the standard input of sort. Sort can answer only after end-of-file, so its output appears when we close our end (pclose); it writes straight to the terminal:',
  fruit: ['pear', 'apple', 'fig'],
  pclose: (code: number | null) => `pclose waited for the child: exit status ${code}.`,
};

const zh: typeof en = {
  title: '匿名管道与 popen（高级管道）',
  create: (fds: string) => `父进程创建两个管道（${fds}）。管道是单向的字节流，一问一答就需要两个管道。`,
  spawn: (pid: number) =>
    `子进程（pid ${pid}）继承第一个管道的读端（fd 3）和第二个管道的写端（fd 4）；父进程随即关闭自己手里的这两端。`,
  why: '为什么要关闭：只有当所有写端都关闭后，读端才会读到文件结束（EOF）。父进程若忘了关闭写端，子进程就会一直等下去。',
  question: '你好，子进程：这句话经过了管道',
  write: (q: string) => `父进程把「${q}」写入第一个管道，然后关闭写端。`,
  answer: '子进程一直读到 EOF，再从第二个管道回复；父进程同样读到 EOF 为止。',
  answered: (pid: number, bytes: number, q: string) => `子进程 ${pid} 读到 ${bytes} 字节：「${q}」`,
  reaped: (code: number | null) => `子进程以状态 ${code} 退出；Node 用 waitpid 回收了它，不会留下僵尸进程。`,
  popenR: 'popen(…, "r")：由 shell 执行命令，命令的标准输出是连到我们的管道，我们读取它的输出。',
  popenRCommand: 'echo "shell $$ 向你问好"; uname -sr',
  popenROut: (line: string) => `从管道读到：${line}`,
  popenW: 'popen("sort", "w")：我们向 sort 的标准输入写三行。sort 要读到 EOF 才能输出，所以要等我们关闭写端（pclose）后，它才把结果直接写到终端：',
  fruit: ['梨 pear', '苹果 apple', '无花果 fig'],
  pclose: (code: number | null) => `pclose 等待子进程结束：退出状态 ${code}。`,
};

export const pipeStep = defineStep('pipe', { en, zh }, async (t, m) => {
  const [toChildR, toChildW] = pipe();
  const [toParentR, toParentW] = pipe();
  t.defer(() => [toChildR, toChildW, toParentR, toParentW].forEach((end) => end.destroy()));
  t.say(m.create(`fd ${toChildR.fd} ← fd ${toChildW.fd}, fd ${toParentR.fd} ← fd ${toParentW.fd}`), ['pipe2']);

  const child = t.child('pipe', [], { fds: [toChildR.fd, toParentW.fd] });
  toChildR.destroy();
  toParentW.destroy();
  t.say(m.spawn(child.pid), ['fork', 'dup2', 'execve', 'close']);
  t.say(m.why);

  t.say(m.write(m.question), ['write', 'close']);
  toChildW.end(m.question);
  const answer = JSON.parse(await text(toParentR)) as { pid: number; bytes: number; text: string };
  t.say(m.answer, ['read', 'write', 'read']);
  t.show(m.answered(answer.pid, answer.bytes, answer.text));
  if (answer.text !== m.question) throw new Error(`the child read ${JSON.stringify(answer.text)}`);
  const { code } = await child.exited;
  t.say(m.reaped(code), ['exit_group', 'wait4']);
  if (code !== 0) throw new Error(`the child exited with status ${code}`);

  t.say(m.popenR, ['pipe2', 'fork', 'execve /bin/sh', 'read', 'wait4']);
  const reader = popen(m.popenRCommand, 'r');
  t.defer(() => reader.child.kill('SIGKILL'));
  const printed = await text(reader.stream);
  for (const line of printed.trim().split('\n')) t.show(m.popenROut(line));
  const readStatus = await reader.close();
  if (readStatus.code !== 0) throw new Error(`popen "r" child ended with ${JSON.stringify(readStatus)}`);

  t.say(m.popenW, ['pipe2', 'fork', 'execve /bin/sh', 'write', 'close', 'wait4']);
  // sort's output goes straight to our standard output; sed indents it under this line.
  const writer = popen("sort | sed 's/^/       /'", 'w');
  t.defer(() => writer.child.kill('SIGKILL'));
  for (const fruit of m.fruit) writer.stream.write(`${fruit}\n`);
  const status = await writer.close();
  t.say(m.pclose(status.code));
  if (status.code !== 0) throw new Error(`popen "w" child ended with ${JSON.stringify(status)}`);
});
