// Step: a FIFO (named pipe) and the rules for opening one.
import { lstatSync } from 'node:fs';
import { join } from 'node:path';
import { text } from 'node:stream/consumers';
import { fifo, IpcError } from '../../index.js';
import { defineStep } from './kit.js';

/** How long rule 1 waits for a writer that is not coming. */
const PATIENCE_MS = 200;

const en = {
  title: 'FIFO (named pipe): the rules for opening one',
  create: (path: string, mode: string) =>
    `mkfifo creates ${path} (file type p, mode ${mode}): a pipe with a name in the file system, so unrelated processes can find it.`,
  rule1: (ms: number) => `Rule 1: opening for reading waits until some process opens it for writing. Nobody does yet: we give up after ${ms} ms.`,
  rule1Result: (code: string) => `${code}: the open(2) was still waiting for a writer`,
  rule2: 'Rule 2: opening for writing with O_NONBLOCK, while there is no reader, fails at once.',
  rule2Result: (code: string) => `${code}: no process has the FIFO open for reading`,
  rule3: 'Rule 3: opening for reading with O_NONBLOCK succeeds at once, writer or not. (We close it again.)',
  rule3Result: (ms: string) => `opened after ${ms} ms`,
  meet: (pid: number) =>
    `Now for real: the parent opens for reading and waits; a child (pid ${pid}) opens the FIFO for writing, which completes both opens.`,
  waited: (ms: number) => `the parent's open waited ${ms} ms, until the writer arrived`,
  line: 'a line through the FIFO',
  read: 'The child writes a line and closes its end; the parent reads it, then end-of-file: the last writer is gone.',
  got: (line: string) => `read: «${line}»`,
  remove: 'The FIFO file is removed. The bytes never touched the disk: they went through a buffer in the kernel.',
};

const zh: typeof en = {
  title: 'FIFO（命名管道）：打开时的规则',
  create: (path: string, mode: string) =>
    `mkfifo 创建 ${path}（文件类型 p，权限 ${mode}）：一个在文件系统中有名字的管道，因此没有亲缘关系的进程也能找到它。`,
  rule1: (ms: number) => `规则一：以读方式打开时，要等到有进程以写方式打开它。现在还没有写者：我们等 ${ms} 毫秒后放弃。`,
  rule1Result: (code: string) => `${code}：open(2) 一直在等写者`,
  rule2: '规则二：没有读者时，以 O_NONBLOCK 方式打开写端会立即失败。',
  rule2Result: (code: string) => `${code}：没有进程以读方式打开这个 FIFO`,
  rule3: '规则三：以 O_NONBLOCK 方式打开读端会立即成功，不管有没有写者。（随后关闭。）',
  rule3Result: (ms: string) => `${ms} 毫秒内打开`,
  meet: (pid: number) => `真正通信：父进程以读方式打开并等待；子进程（pid ${pid}）以写方式打开这个 FIFO，双方的 open 同时完成。`,
  waited: (ms: number) => `父进程的 open 等了 ${ms} 毫秒，直到写者出现`,
  line: '经过 FIFO 的一行字',
  read: '子进程写入一行后关闭写端；父进程读到这一行，接着读到 EOF：最后一个写者已经离开。',
  got: (line: string) => `读到：「${line}」`,
  remove: '删除 FIFO 文件。数据从未写到磁盘上：它经过的是内核里的缓冲区。',
};

async function errorCode(attempt: Promise<unknown>): Promise<string> {
  try {
    const stream = (await attempt) as { destroy(): void };
    stream.destroy();
  } catch (e) {
    if (e instanceof IpcError) return e.code;
    throw e;
  }
  throw new Error('the open succeeded, against the rule');
}

export const fifoStep = defineStep('fifo', { en, zh }, async (t, m) => {
  const path = join(t.names.workDir, 'jobs.fifo');
  fifo.create(path, { mode: 0o600 });
  t.defer(() => fifo.remove(path));
  t.say(m.create(path, (lstatSync(path).mode & 0o777).toString(8).padStart(4, '0')), ['mkfifo']);

  t.say(m.rule1(PATIENCE_MS), ['open(O_RDONLY)']);
  t.show(m.rule1Result(await errorCode(fifo.open(path, 'r', { timeout: PATIENCE_MS, signal: t.signal }))));
  t.say(m.rule2, ['open(O_WRONLY|O_NONBLOCK)']);
  const rule2 = await errorCode(fifo.open(path, 'w', { wait: false }));
  t.show(m.rule2Result(rule2));
  if (rule2 !== 'ENXIO') throw new Error(`expected ENXIO, got ${rule2}`);
  t.say(m.rule3, ['open(O_RDONLY|O_NONBLOCK)', 'close']);
  const started = performance.now();
  (await fifo.open(path, 'r', { wait: false })).destroy();
  t.show(m.rule3Result((performance.now() - started).toFixed(1)));

  const opening = fifo.open(path, 'r', { signal: t.signal });
  const waitStarted = performance.now();
  const child = t.child('fifo', [path, m.line]);
  t.say(m.meet(child.pid), ['open(O_RDONLY)', 'open(O_WRONLY)']);
  const reader = await opening;
  t.show(m.waited(Math.round(performance.now() - waitStarted)));
  const line = await text(reader);
  reader.destroy();
  t.say(m.read, ['write', 'close', 'read', 'read → 0']);
  t.show(m.got(line));
  if (line !== m.line) throw new Error(`read ${JSON.stringify(line)}`);
  await child.done();
  fifo.remove(path);
  t.say(m.remove, ['unlink']);
});
