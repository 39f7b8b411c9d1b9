// The other process in the tour's steps: `node child.js ROLE ARGS...`, started
// by Tour.child(). Each role does one side of one mechanism with ipckit (or,
// where a C program would, with plain read/write on an inherited descriptor)
// and reports what it saw as JSON lines on stdout; the parent narrates.
// Each role imports only the modules it uses: loading all of ipckit would
// make every child start noticeably slower, and the tour starts many.
import { once } from 'node:events';
import { readFileSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { UnixStream } from '../../sockets/unix.js';

const emit = (message: object): void => {
  process.stdout.write(`${JSON.stringify(message)}\n`);
};

// A child never outlives the tour by much: it leaves when its parent is gone
// (reparented) and, whatever happens, after a minute. Roles that block their
// thread bound each wait with a timeout for the same reason.
const parentPid = process.ppid;
setInterval(() => process.ppid !== parentPid && process.exit(1), 250).unref();
setTimeout(() => process.exit(1), 60_000).unref();
const WAIT_MS = 20_000;

const roles: Record<string, (args: string[]) => Promise<void> | void> = {
  /** fd 3: read end of the parent's pipe; fd 4: write end of the answer pipe. */
  pipe() {
    const question = readFileSync(3); // read(2) until end-of-file: every write end closed
    writeSync(4, JSON.stringify({ pid: process.pid, bytes: question.length, text: question.toString() }));
  },

  /** fd 3: our end of a socketpair. Greets at once, answers numbers with their squares. */
  async socketpair([greeting]) {
    const unix = await import('../../sockets/unix.js');
    const s = unix.fromFd(3) as UnixStream;
    s.write(`${greeting}\n`); // without waiting for the parent: both directions are independent
    for await (const line of createInterface({ input: s })) {
      if (/^\d+$/.test(line)) s.write(`${Number(line) ** 2}\n`);
      else emit({ received: line });
    }
    s.end();
  },

  /** Opens the FIFO for writing (this is what the parent's read-open waits for), writes, closes. */
  async fifo([path, text]) {
    const fifo = await import('../../pipes/fifo.js');
    const w = await fifo.open(path!, 'w', { timeout: WAIT_MS });
    w.end(text);
    await once(w, 'finish');
    w.destroy();
  },

  exit([code]) {
    process.exit(Number(code));
  },

  /** Sends `count` SIGUSR1 (kill) and `count` SIGRTMIN+1 with payloads 1..count (sigqueue) to the parent. */
  async signals([count]) {
    const signals = await import('../../signals/signals.js');
    for (let i = 1; i <= Number(count); i++) {
      signals.send(parentPid, 'SIGUSR1');
      signals.send(parentPid, 'SIGRTMIN+1', { value: i });
    }
    emit({ sent: Number(count) });
  },

  /** Opens the System V queue by key and sends [type, text] pairs. */
  async sysvmq([key, messages]) {
    const { sysv } = await import('../../mq/mq-sysv.js');
    const q = sysv.get(Number(key));
    for (const [type, text] of JSON.parse(messages!) as Array<[number, string]>) await q.send(type, text);
    emit({ sent: true });
  },

  /** Opens the POSIX queue by name and sends [priority, text] pairs. */
  async mq([name, messages]) {
    const mq = await import('../../mq/mq-posix.js');
    const q = mq.open(name!, { writeOnly: true });
    for (const [priority, text] of JSON.parse(messages!) as Array<[number, string]>) await q.send(text, { priority });
    q.close();
    emit({ sent: true });
  },

  /** P on semaphore 0 of the set with `key`: this thread sleeps in semop until someone does V. */
  async sem([key]) {
    const { sysv } = await import('../../sync/sem-sysv.js');
    const set = sysv.get(Number(key));
    emit({ waiting: true });
    const started = performance.now();
    set.opSync([{ index: 0, delta: -1 }], { timeout: WAIT_MS });
    emit({ passed: true, waitedMs: Math.round(performance.now() - started) });
  },

  /**
   * Counts in the shared object `name`, one round per change of the word at
   * offset 4 (the parent's go): adds 1 to the int at offset 0 as many times
   * as the word at offset 12 says, the way the word at offset 8 says — 1 plain
   * (load, add, store), 2 Atomics.add, 3 under the Mutex at byte 64; 0 ends.
   */
  async shm([name]) {
    const [shm, futex, { Mutex }] = await Promise.all([import('../../shm/shm.js'), import('../../sync/futex.js'), import('../../sync/mutex.js')]);
    const region = shm.open(name!);
    const words = new Int32Array(region.buffer);
    let go = Atomics.load(words, 1);
    emit({ ready: true });
    for (;;) {
      // 'not-equal' when the go came before we slept: fine. A timeout throws
      // ETIMEDOUT: wait again unless the parent is gone.
      try {
        futex.wait(words, 1, go, { timeout: WAIT_MS });
      } catch (e) {
        if ((e as { code?: string }).code !== 'ETIMEDOUT') throw e;
        if (process.ppid !== parentPid) process.exit(1);
      }
      if (Atomics.load(words, 1) === go) continue;
      go = Atomics.load(words, 1);
      const mode = Atomics.load(words, 2);
      const count = Atomics.load(words, 3);
      if (mode === 0) break;
      const started = performance.now();
      if (mode === 1) {
        for (let i = 0; i < count; i++) words[0] = words[0]! + 1;
      } else if (mode === 2) {
        for (let i = 0; i < count; i++) Atomics.add(words, 0, 1);
      } else {
        const mutex = Mutex.at(region.buffer, 64);
        for (let i = 0; i < count; i++) {
          mutex.lockSync({ timeout: WAIT_MS });
          words[0] = words[0]! + 1;
          mutex.unlock();
        }
      }
      emit({ done: true, ms: performance.now() - started });
    }
    region.close();
  },

  /** Connects to the Unix socket at `path`, sends one line, reports the answer line. */
  async unix([path, text]) {
    const unix = await import('../../sockets/unix.js');
    const c = await unix.connect(path!);
    c.write(`${text}\n`);
    const lines = createInterface({ input: c })[Symbol.asyncIterator]();
    const answer = await lines.next();
    emit({ received: answer.value });
    c.end();
    await once(c, 'close');
  },

  /** Connects to the channel at `url`, answers the parent's requests, sends one of its own. */
  async channel([url, question]) {
    const channel = await import('../../channel/index.js');
    const ch = await channel.connect<Record<string, unknown>>(url!, { timeout: WAIT_MS });
    ch.onRequest((req) => ({ pid: process.pid, sum: (req.numbers as number[]).reduce((a, b) => a + b, 0) }));
    const reply = await ch.request({ question, from: process.pid }, { timeout: WAIT_MS });
    emit({ reply });
    await once(ch, 'close'); // the parent closes when it is done
  },
};

const [role, ...args] = process.argv.slice(2);
const run = roles[role ?? ''];
if (!run) {
  process.stderr.write(`tour child: unknown role ${String(role)}\n`);
  process.exit(2);
}
await run(args);
