// Step: two processes increment one counter in shared memory — first without
// synchronisation (updates get lost), then with Atomics and with a mutex.
import { futex, Mutex, shm, type SharedRegion } from '../../index.js';
import { defineStep, posixName, type Tour, type TourChild } from './kit.js';

/** Increments per child: enough that two children on two cores overlap for milliseconds. */
const PLAIN = 2_000_000;
/** With a lock around each increment (each contended lock is a system call or two). */
const LOCKED = 20_000;
/** The unsynchronised round is repeated when the children happened not to overlap at all. */
const ATTEMPTS = 3;
/** Int32 words of the object: the counter, the go word, the mode of the round, its count; the mutex lives at byte 64. */
const COUNTER = 0;
const GO = 1;
const MODE = 2;
const COUNT = 3;
const MUTEX_OFFSET = 64;
/** Modes, as the children read them from MODE. */
const MODES = { quit: 0, plain: 1, atomic: 2, mutex: 3 } as const;

const n = (x: number) => x.toLocaleString('en-US');

const en = {
  title: 'Shared memory: lost updates, and how to prevent them',
  create: (name: string) =>
    `shm_open creates ${name}; ftruncate gives it 4 KiB; mmap maps it into the parent. The int at offset 0 is a counter.`,
  start: (a: number, b: number) =>
    `Two children (pids ${a} and ${b}) map the same object and sleep on a futex at offset 4 until the parent changes the number there and wakes them both: they start together.`,
  plain: (count: number) =>
    `Round 1, no synchronisation: each child adds 1 to the counter ${n(count)} times with c = c + 1 — a load, an add and a store. No system call is involved: the memory is simply shared.`,
  result: (expected: number, got: number, ms: number) =>
    `expected ${n(expected)}, counted ${n(got)}${got < expected ? `: ${n(expected - got)} updates lost (${(((expected - got) / expected) * 100).toFixed(0)}%)` : ''}, ${ms.toFixed(0)} ms`,
  lost: 'Lost updates: both children load the same value, both store that value + 1, and one of the two increments disappears. Nothing in the hardware or the kernel prevents it.',
  noOverlap: 'This time the two children never ran at the same moment (a busy machine can run them one after the other), so nothing was lost; the race is still there.',
  atomic: (count: number) =>
    `Round 2, Atomics.add: the load, add and store become one indivisible read-modify-write instruction. ${n(count)} times each, still no system call.`,
  mutex: (count: number) =>
    `Round 3, a mutex in the same shared memory (ipckit Mutex: a futex word, robust if its holder dies): lock, c = c + 1, unlock, ${n(count)} times each. Only a contended lock costs a system call.`,
  exact: 'exact: nothing lost',
  remove: 'The children unmap the object when they exit; shm_unlink removes its name and the memory goes with the last mapping.',
};

const zh: typeof en = {
  title: '共享内存：丢失的更新，以及如何避免',
  create: (name: string) => `shm_open 创建 ${name}；ftruncate 把它设为 4 KiB；mmap 把它映射到父进程。偏移 0 处的整数是计数器。`,
  start: (a: number, b: number) =>
    `两个子进程（pid ${a} 和 ${b}）映射同一个对象，在偏移 4 处的 futex 上睡眠，直到父进程改写那里的数值并同时唤醒它们：两者一起开始。`,
  plain: (count: number) =>
    `第一轮，不加同步：每个子进程用 c = c + 1 给计数器加 1，共 ${n(count)} 次——先读、再加、再写。整个过程没有系统调用：内存本来就是共享的。`,
  result: (expected: number, got: number, ms: number) =>
    `应为 ${n(expected)}，实际 ${n(got)}${got < expected ? `：丢失了 ${n(expected - got)} 次更新（${(((expected - got) / expected) * 100).toFixed(0)}%）` : ''}，用时 ${ms.toFixed(0)} 毫秒`,
  lost: '更新丢失：两个子进程读到同一个值，各自写回这个值加 1，于是两次加法只留下一次。硬件和内核都不会阻止这种事。',
  noOverlap: '这一次两个子进程没有同时运行（机器繁忙时它们可能先后执行），所以没有丢失；但竞争条件依然存在。',
  atomic: (count: number) => `第二轮，用 Atomics.add：读、加、写合成一条不可分割的“读-改-写”指令。每个子进程 ${n(count)} 次，依然没有系统调用。`,
  mutex: (count: number) =>
    `第三轮，用放在同一块共享内存里的互斥锁（ipckit Mutex：一个 futex 字；持有者崩溃也不会让别人永远等下去）：加锁、c = c + 1、解锁，每个子进程 ${n(count)} 次。只有发生争用时才需要系统调用。`,
  exact: '完全正确：一次也没丢',
  remove: '子进程退出时解除映射；shm_unlink 删除名字，最后一个映射消失时内存也随之释放。',
};

interface Round {
  counted: number;
  ms: number;
}

/**
 * Two children that count in the shared object, one round each time the
 * parent changes the go word (child.ts, role shm). Between rounds they sleep
 * on that word, so each round starts in both at once.
 */
class Counters {
  readonly #words: Int32Array;
  readonly #region: SharedRegion;
  readonly children: TourChild[];

  private constructor(region: SharedRegion, children: TourChild[]) {
    this.#region = region;
    this.#words = new Int32Array(region.buffer);
    this.children = children;
  }

  static async start(t: Tour, region: SharedRegion, name: string): Promise<Counters> {
    const children = [t.child('shm', [name]), t.child('shm', [name])];
    await Promise.all(children.map((c) => c.next()));
    return new Counters(region, children);
  }

  #go(mode: number, count: number): void {
    Atomics.store(this.#words, MODE, mode);
    Atomics.store(this.#words, COUNT, count);
    Atomics.add(this.#words, GO, 1);
    futex.notify(this.#words, GO);
  }

  async round(mode: 'plain' | 'atomic' | 'mutex', count: number): Promise<Round> {
    Atomics.store(this.#words, COUNTER, 0);
    if (mode === 'mutex') Mutex.at(this.#region.buffer, MUTEX_OFFSET, { init: true });
    this.#go(MODES[mode], count);
    const done = await Promise.all(this.children.map((c) => c.next<{ ms: number }>()));
    return { counted: Atomics.load(this.#words, COUNTER), ms: Math.max(...done.map((d) => d.ms)) };
  }

  async stop(): Promise<void> {
    this.#go(MODES.quit, 0);
    await Promise.all(this.children.map((c) => c.done()));
  }
}

export const shmStep = defineStep('shm', { en, zh }, async (t, m) => {
  const name = posixName(t.names, 'shm');
  const region = shm.open(name, { create: true, exclusive: true, size: 4096 });
  t.defer(() => region.close());
  t.defer(() => shm.unlink(name));
  t.say(m.create(name), ['shm_open(O_CREAT|O_EXCL)', 'ftruncate', 'mmap(MAP_SHARED)']);

  const counters = await Counters.start(t, region, name);
  const [a, b] = counters.children;
  t.say(m.start(a!.pid, b!.pid), ['shm_open', 'mmap', 'futex(FUTEX_WAIT)', 'futex(FUTEX_WAKE)']);
  let plain = await counters.round('plain', PLAIN);
  for (let attempt = 1; plain.counted === 2 * PLAIN && attempt < ATTEMPTS; attempt++) plain = await counters.round('plain', PLAIN);
  t.say(m.plain(PLAIN));
  t.show(m.result(2 * PLAIN, plain.counted, plain.ms));
  t.say(plain.counted < 2 * PLAIN ? m.lost : m.noOverlap);

  const atomic = await counters.round('atomic', PLAIN);
  t.say(m.atomic(PLAIN));
  const exactly = (r: Round, count: number) => `${m.result(2 * count, r.counted, r.ms)}${r.counted === 2 * count ? ` — ${m.exact}` : ''}`;
  t.show(exactly(atomic, PLAIN));
  const locked = await counters.round('mutex', LOCKED);
  t.say(m.mutex(LOCKED), ['futex(FUTEX_WAIT)', 'futex(FUTEX_WAKE)']);
  t.show(exactly(locked, LOCKED));
  if (atomic.counted !== 2 * PLAIN || locked.counted !== 2 * LOCKED) throw new Error(`synchronised counts ${atomic.counted} and ${locked.counted}`);

  await counters.stop();
  region.close();
  shm.unlink(name);
  t.say(m.remove, ['munmap', 'shm_unlink']);
});
