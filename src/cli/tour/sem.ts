// Step: a semaphore's P blocks a child until the parent's V.
import { setTimeout as sleep } from 'node:timers/promises';
import { formatKey } from '../../core/errors.js';
import { sem } from '../../index.js';
import { createExclusive, defineStep } from './kit.js';

const en = {
  title: 'Semaphore: P waits, V wakes',
  create: (key: string, id: number) =>
    `semget creates a set of one semaphore for key ${key} (id ${id}); semctl(SETVAL) sets it to 0: nothing is available yet.`,
  p: (pid: number) => `A child (pid ${pid}) does P, "take one": subtract 1. The value cannot go below 0, so the kernel puts the child to sleep.`,
  counts: (waiting: number, value: number) => `processes waiting on it: ${waiting}; value: ${value}`,
  v: 'The parent does V, "give one back": add 1. The kernel wakes the waiting child, whose P completes and takes the value back to 0.',
  passed: (ms: number, value: number, pid: number) => `the child's P returned after ${ms} ms; value now ${value}; last operation by pid ${pid}`,
  posix: 'POSIX semaphores (sem_open, sem_wait, sem_post) are the same P and V, one semaphore at a time; System V applies several operations to a set atomically.',
  remove: 'semctl(IPC_RMID) removes the set; a process still waiting would get EIDRM.',
};

const zh: typeof en = {
  title: '信号量：P 操作等待，V 操作唤醒',
  create: (key: string, id: number) => `semget 为键 ${key} 创建只含一个信号量的集合（id ${id}）；semctl(SETVAL) 把它设为 0：暂时没有可用资源。`,
  p: (pid: number) => `子进程（pid ${pid}）执行 P 操作，“申请一个”：减 1。信号量不能小于 0，所以内核让子进程睡眠等待。`,
  counts: (waiting: number, value: number) => `等待它的进程数：${waiting}；当前值：${value}`,
  v: '父进程执行 V 操作，“释放一个”：加 1。内核唤醒等待中的子进程，它的 P 操作完成，值又回到 0。',
  passed: (ms: number, value: number, pid: number) => `子进程的 P 操作在 ${ms} 毫秒后返回；当前值 ${value}；最后一次操作来自 pid ${pid}`,
  posix: 'POSIX 信号量（sem_open、sem_wait、sem_post）也是同样的 P 和 V，一次一个信号量；System V 则能对一个集合原子地执行多个操作。',
  remove: 'semctl(IPC_RMID) 删除信号量集合；仍在等待的进程会得到 EIDRM。',
};


export const semStep = defineStep('sem', { en, zh }, async (t, m) => {
  const key = t.names.sysvKey;
  const set = createExclusive(() => sem.sysv.get(key, { create: true, exclusive: true, count: 1 }), key);
  t.defer(() => set.remove());
  set.setValue(0, 0);
  t.say(m.create(formatKey(key), set.id), ['semget(IPC_CREAT|IPC_EXCL)', 'semctl(SETVAL)']);

  const child = t.child('sem', [key]);
  await child.next();
  // The kernel's own count of sleepers (GETNCNT) says when the child is really blocked.
  while (set.waitingCount(0) === 0) await sleep(2, undefined, { signal: t.signal });
  t.say(m.p(child.pid), ['semop(sem_op = -1)', 'semctl(GETNCNT)']);
  t.show(m.counts(set.waitingCount(0), set.getValue(0)));

  await set.op([{ index: 0, delta: 1 }]);
  t.say(m.v, ['semop(sem_op = +1)']);
  const { waitedMs } = await child.next<{ waitedMs: number }>();
  t.show(m.passed(waitedMs, set.getValue(0), set.pidOf(0)));
  await child.done();
  t.say(m.posix);
  set.remove();
  t.say(m.remove, ['semctl(IPC_RMID)']);
});
