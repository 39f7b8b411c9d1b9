// Step: SIGCHLD and a zombie that is then reaped; realtime signals queue
// (every one arrives, with its payload) while standard ones merge.
import { existsSync, readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { signals, type SignalInfo } from '../../index.js';
import { defineStep, type TourChild } from './kit.js';

const SENT = 5;

const en = {
  title: 'Signals: SIGCHLD and zombies, realtime versus standard signals',
  hold: 'The parent takes SIGCHLD and holds it blocked for a moment: until it is delivered, nothing collects the exit status of our children.',
  spawn: (pid: number) => `A child (pid ${pid}) starts and exits at once with status 7.`,
  zombie: (pid: number) =>
    `The child is now a zombie: it has finished, but the kernel keeps its pid and exit status until the parent collects them. /proc/${pid}/stat shows its state:`,
  state: (state: string, pending: boolean) => `state ${state}${state === 'Z' ? ' (zombie)' : ''}; SIGCHLD ${pending ? 'pending for the parent' : 'not pending'}`,
  unblock: 'The parent unblocks SIGCHLD. It arrives with the pid of the child, the reason and the status; then the status is collected.',
  chld: (pid: number, code: string, status: number | undefined, state: string) =>
    `SIGCHLD from pid ${pid}, code ${code}, status ${status} — at that moment still in state ${state}`,
  reaped: (pid: number, gone: boolean) => `Reaped: ${gone ? `/proc/${pid} is gone, and the pid may be used again` : `/proc/${pid} still exists`}.`,
  send: (pid: number, n: number) =>
    `The parent blocks SIGUSR1 (a standard signal) and SIGRTMIN+1 (a realtime one). A child (pid ${pid}) sends each ${n} times, the realtime ones with payloads 1 to ${n}.`,
  pending: 'While blocked they wait in the kernel, pending:',
  pendingList: (names: string) => `pending: ${names}`,
  deliver: 'The parent unblocks them and reads what arrives:',
  realtime: (n: number, values: string) => `SIGRTMIN+1 × ${n}, in order, payloads ${values}: realtime signals are queued, every one is kept`,
  standard: (n: number, sent: number) =>
    `SIGUSR1 × ${n} (${sent} sent): a standard signal is one pending bit, so the ${sent - n} extra sends were merged into it`,
};

const zh: typeof en = {
  title: '信号：SIGCHLD 与僵尸进程，实时信号与标准信号',
  hold: '父进程接管 SIGCHLD，并暂时把它阻塞：在它送达之前，没有人去回收子进程的退出状态。',
  spawn: (pid: number) => `子进程（pid ${pid}）启动后立即以状态 7 退出。`,
  zombie: (pid: number) => `子进程现在是僵尸进程：它已经结束，但内核保留着它的 pid 和退出状态，直到父进程回收。/proc/${pid}/stat 显示它的状态：`,
  state: (state: string, pending: boolean) => `状态 ${state}${state === 'Z' ? '（僵尸）' : ''}；SIGCHLD ${pending ? '在父进程处未决（pending）' : '没有未决'}`,
  unblock: '父进程解除对 SIGCHLD 的阻塞。信号带着子进程的 pid、原因和状态送达；随后退出状态被回收。',
  chld: (pid: number, code: string, status: number | undefined, state: string) => `来自 pid ${pid} 的 SIGCHLD，code ${code}，状态 ${status}——此刻它仍处于状态 ${state}`,
  reaped: (pid: number, gone: boolean) => `已回收：${gone ? `/proc/${pid} 不见了，这个 pid 可以被重新使用` : `/proc/${pid} 仍然存在`}。`,
  send: (pid: number, n: number) =>
    `父进程阻塞 SIGUSR1（标准信号）和 SIGRTMIN+1（实时信号）。子进程（pid ${pid}）各发送 ${n} 次，实时信号附带数据 1 到 ${n}。`,
  pending: '被阻塞期间，它们留在内核中，处于未决状态：',
  pendingList: (names: string) => `未决信号：${names}`,
  deliver: '父进程解除阻塞，读取送达的信号：',
  realtime: (n: number, values: string) => `SIGRTMIN+1 × ${n}，按顺序，附带数据 ${values}：实时信号会排队，一个也不丢`,
  standard: (n: number, sent: number) => `SIGUSR1 × ${n}（发送了 ${sent} 次）：标准信号只是一个未决标志位，多发的 ${sent - n} 次被合并了`,
};

/** The state letter in /proc/PID/stat (R, S, Z...), or '-' once the process is gone. */
function processState(pid: number): string {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0] ?? '?';
  } catch {
    return '-';
  }
}

/**
 * Polls /proc until the process is a zombie and the kernel has queued our
 * SIGCHLD: nothing else can tell while SIGCHLD is held. (The leader of a
 * process with threads shows Z a moment before its last thread is gone and
 * the parent is notified.)
 */
async function untilZombie(pid: number, signal: AbortSignal): Promise<string> {
  for (;;) {
    const state = processState(pid);
    if (state === '-' || (state === 'Z' && signals.pending().includes('SIGCHLD'))) return state;
    await sleep(5, undefined, { signal });
  }
}

export const signalsStep = defineStep('signals', { en, zh }, async (t, m) => {
  // --- SIGCHLD and a zombie ---
  let onChild: (info: SignalInfo) => void = () => {};
  const stopListening = signals.on('SIGCHLD', (info) => onChild(info));
  signals.block('SIGCHLD');
  const children: TourChild[] = [];
  t.defer(async () => {
    signals.unblock('SIGCHLD');
    // Keep listening until our children are reaped: Node reaps on the SIGCHLD
    // a listener passes on, and one still queued when the last listener goes
    // is dropped — the zombie would stay.
    await Promise.race([Promise.all(children.map((c) => c.exited)), sleep(3000, undefined, { ref: false })]);
    stopListening();
  });
  t.say(m.hold, ['signalfd', 'rt_sigprocmask(SIG_BLOCK)']);
  const child = t.child('exit', [7]);
  children.push(child);
  t.say(m.spawn(child.pid), ['fork', 'execve', 'exit_group(7)']);
  const state = await untilZombie(child.pid, t.signal);
  t.say(m.zombie(child.pid), ['read /proc/PID/stat', 'rt_sigpending']);
  t.show(m.state(state, signals.pending().includes('SIGCHLD')));
  if (state !== 'Z') throw new Error(`child ${child.pid} is in state ${state}, not a zombie`);

  const arrived = new Promise<{ info: SignalInfo; state: string }>((resolve) => {
    // Listeners run before Node's own SIGCHLD handling collects the child.
    onChild = (info) => info.pid === child.pid && resolve({ info, state: processState(info.pid) });
  });
  signals.unblock('SIGCHLD');
  t.say(m.unblock, ['rt_sigprocmask(SIG_UNBLOCK)', 'read(signalfd)', 'wait4']);
  const { info, state: then } = await arrived;
  t.show(m.chld(info.pid, info.code, info.status, then));
  const exit = await child.exited;
  stopListening();
  const gone = !existsSync(`/proc/${child.pid}`);
  t.say(m.reaped(child.pid, gone));
  if (exit.code !== 7 || info.status !== 7 || !gone) throw new Error(`child ${child.pid}: ${JSON.stringify({ exit, status: info.status, gone })}`);

  // --- realtime signals queue, standard signals merge ---
  const watch = signals.watch(['SIGUSR1', 'SIGRTMIN+1']);
  signals.block('SIGUSR1', 'SIGRTMIN+1');
  t.defer(() => {
    signals.unblock('SIGUSR1', 'SIGRTMIN+1');
    watch.close();
  });
  const sender = t.child('signals', [SENT]);
  children.push(sender);
  t.say(m.send(sender.pid, SENT), ['rt_sigprocmask(SIG_BLOCK)', 'kill', 'rt_sigqueueinfo']);
  await sender.next();
  await sender.done();
  t.say(m.pending, ['rt_sigpending']);
  t.show(m.pendingList(signals.pending().filter((s) => s === 'SIGUSR1' || s === 'SIGRTMIN+1').join(', ')));

  signals.unblock('SIGUSR1', 'SIGRTMIN+1');
  t.say(m.deliver, ['rt_sigprocmask(SIG_UNBLOCK)', 'read(signalfd)']);
  // The kernel hands out lower-numbered signals first, so SIGUSR1 (10) is read
  // before the last SIGRTMIN+1: once that is in, everything is.
  let standard = 0;
  const values: number[] = [];
  for await (const s of watch) {
    if (s.signal === 'SIGUSR1') standard++;
    else values.push(s.value ?? NaN);
    if (values.length === SENT) break;
  }
  t.show(m.realtime(values.length, values.join(', ')));
  t.show(m.standard(standard, SENT));
  if (values.join() !== '1,2,3,4,5' || standard !== 1) throw new Error(`realtime ${values.join()}, standard × ${standard}`);
});
