// Step: which mechanism to choose — the trade-offs, with round trips measured
// here and now by the benchmark harness (two fresh processes per mechanism).
import { findCase } from '../../bench/registry.js';
import { runBench } from '../../bench/run.js';
import { defineStep } from './kit.js';

/** Timed round trips per mechanism: a few thousand keeps the whole step to a few seconds. */
const ROUNDS = 2000;
/** The reference row of the ratio column. */
const REFERENCE = 'unix-stream';
const MEASURED = ['pipe', 'unix-stream', 'posix-mq', 'shm-atomics', 'channel:shm'] as const;
type Measured = (typeof MEASURED)[number];

const times = (r: number) => (r >= 10 ? r.toFixed(0) : r.toPrecision(2));
const us = (x: number) => (x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));

const en = {
  title: 'Which one to choose',
  measure: (rounds: number) =>
    `Measuring on this machine: for each mechanism, two fresh processes play ping-pong with 64-byte messages, ${rounds.toLocaleString('en-US')} round trips after a warm-up; the median round trip counts.`,
  head: ['mechanism', 'round trip', `compared with a Unix socket`],
  labels: {
    pipe: 'pipe (one each way)',
    'unix-stream': 'Unix stream socket',
    'posix-mq': 'POSIX message queue',
    'shm-atomics': 'shared memory + Atomics',
    'channel:shm': 'ipckit channel (shm:)',
  } satisfies Record<Measured, string>,
  micro: (x: number) => `${us(x)} µs`,
  ratio: (r: number) => (r === 1 ? '1×' : Math.abs(r - 1) < 0.05 ? 'about the same' : r < 1 ? `${times(1 / r)}× faster` : `${times(r)}× slower`),
  skipped: (names: string) => `not measured here: ${names}`,
  tradeoffs: [
    'Pipes and FIFOs: the simplest byte stream, one direction. A pipe joins related processes, a FIFO any two by path. Message boundaries are yours to mark.',
    'Unix sockets and socketpair: both directions, many clients on one listener, the kernel vouches for the peer (SO_PEERCRED) and can pass descriptors; TCP is the same model between machines. The usual default.',
    'Message queues: the kernel keeps message boundaries, orders by priority (POSIX) or selects by type (System V). Messages are small, and a queue outlives its processes: remove it.',
    'Shared memory: no copy and no system call per message, by far the fastest — but the synchronisation (Atomics, futexes, semaphores, a mutex) and the layout of the data are yours.',
    'Signals and semaphores carry almost no data: they notify and synchronise. An ipckit channel puts typed messages and requests on shared-memory rings, with the same API over sockets when the peer moves.',
    'Rule of thumb: start with a socket or a channel; reach for shared memory when the round trip matters. The numbers above are this machine, now: they vary with load and with the CPU a process lands on.',
  ],
};

const zh: typeof en = {
  title: '如何选择',
  measure: (rounds: number) =>
    `在本机实测：每种机制由两个新启动的进程用 64 字节的消息来回传递，预热之后计 ${rounds.toLocaleString('en-US')} 次往返，取往返时间的中位数。`,
  head: ['机制', '往返时间', '与 Unix 套接字相比'],
  labels: {
    pipe: '管道（每个方向一个）',
    'unix-stream': 'Unix 流式套接字',
    'posix-mq': 'POSIX 消息队列',
    'shm-atomics': '共享内存 + Atomics',
    'channel:shm': 'ipckit 通道（shm:）',
  },
  micro: (x: number) => `${us(x)} 微秒`,
  ratio: (r: number) => (r === 1 ? '1×' : Math.abs(r - 1) < 0.05 ? '差不多' : r < 1 ? `快 ${times(1 / r)} 倍` : `慢 ${times(r)} 倍`),
  skipped: (names: string) => `本机无法测量：${names}`,
  tradeoffs: [
    '管道和 FIFO：最简单的字节流，单向。管道连接有亲缘关系的进程，FIFO 凭路径连接任意两个进程。消息边界要自己划分。',
    'Unix 套接字和 socketpair：双向，一个监听者可服务多个客户端，内核担保对方身份（SO_PEERCRED），还能传递描述符；TCP 是同样的模型，用于跨机器。通常的首选。',
    '消息队列：内核保留消息边界，按优先级（POSIX）排序或按类型（System V）选取。消息较小，而且队列比进程活得久：用完要删除。',
    '共享内存：每条消息既不复制也没有系统调用，是最快的方式——但同步（Atomics、futex、信号量、互斥锁）和数据布局都要自己负责。',
    '信号和信号量几乎不携带数据：它们用于通知和同步。ipckit 通道把带类型的消息和请求放在共享内存的环形缓冲区上，对端换到别处时，同样的 API 也能跑在套接字上。',
    '经验法则：先用套接字或通道；当往返时间很重要时，再考虑共享内存。上面的数字来自此刻的这台机器：它们会随负载和进程所在的 CPU 而变化。',
  ],
};

export const chooseStep = defineStep(
  'choose',
  { en, zh },
  async (t, m) => {
    const transports = MEASURED.filter((name) => !findCase(name)?.unavailable?.());
    t.say(m.measure(ROUNDS), ['fork', 'execve', 'write/read', 'mq_send/mq_receive', 'futex']);
    const bench = runBench({ transports: [...transports], count: ROUNDS, trials: 1, quiet: true, timeoutMs: 20_000 });
    // Stopped early (Ctrl-C, timeout), the harness kills its peers; the step ends once they are reaped.
    t.defer(() => bench);
    const rows = await bench;
    const reference = rows.find((r) => r.transport === REFERENCE)?.rttMedianUs;
    t.table(
      m.head,
      rows.map((r) => [
        m.labels[r.transport as Measured],
        m.micro(r.rttMedianUs),
        reference ? m.ratio(r.transport === REFERENCE ? 1 : r.rttMedianUs / reference) : '-',
      ]),
      ['left', 'right', 'left'],
    );
    const skipped = MEASURED.filter((name) => !transports.includes(name));
    if (skipped.length) t.show(m.skipped(skipped.map((name) => m.labels[name]).join(', ')));
    for (const line of m.tradeoffs) t.say(line);
  },
  45_000,
);
