// The internal uv_poll watcher (src/core/poller.ts) that signals use and message
// queues and datagram sockets will reuse.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { closeSync, constants as fsc, mkdtempSync, openSync, readSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { IpcError } from 'ipckit';
import { run } from '../helpers.js';

const T = { timeout: 60_000 };
const pollerUrl = new URL('../../dist/core/poller.js', import.meta.url).href;
interface Watcher {
  readonly active: boolean;
  update(events: number): void;
  stop(): void;
}
const { watchFd, READABLE, WRITABLE } = (await import(pollerUrl)) as {
  watchFd(fd: number, events: number, cb: (events: number) => void, o?: { ref?: boolean }): Watcher;
  READABLE: number;
  WRITABLE: number;
};

const dir = mkdtempSync(join(tmpdir(), 'ipckit-poller-'));
after(() => rmSync(dir, { recursive: true, force: true }));
// Named FIFOs for the child-process tests (epoll refuses regular files).
for (const name of ['x', 'y', 'w']) run('mkfifo', [join(dir, name)]);
let fifos = 0;
/** A FIFO opened read-write and non-blocking: a pollable descriptor we can fill and drain. */
function fifo(): number {
  const path = join(dir, `f${fifos++}`);
  run('mkfifo', [path]);
  return openSync(path, fsc.O_RDWR | fsc.O_NONBLOCK);
}
function drain(fd: number): number {
  const buf = Buffer.alloc(4096);
  let total = 0;
  for (;;) {
    try {
      const n = readSync(fd, buf);
      if (n === 0) return total;
      total += n;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EAGAIN') return total;
      throw e;
    }
  }
}
const turns = (n: number) => new Promise<void>((resolve) => {
  const step = (k: number) => (k === 0 ? resolve() : setImmediate(() => step(k - 1)));
  step(n);
});

/** Runs an ES module snippet in a fresh process with `watchFd` etc. in scope. */
function child(code: string): { status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string } {
  const src = `import { watchFd, READABLE } from ${JSON.stringify(pollerUrl)};\nimport { openSync, writeSync, constants as fsc } from 'node:fs';\n${code}`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', src], { encoding: 'utf8', env: { ...process.env, FIFO_DIR: dir } });
  return { status: r.status, signal: r.signal, stdout: r.stdout, stderr: r.stderr };
}

describe('fd watcher (uv_poll)', () => {
  test('calls back on the loop when readable, again while not drained, never after draining', T, async () => {
    const fd = fifo();
    let calls = 0;
    const got: number[] = [];
    const w = watchFd(fd, READABLE, (events) => {
      calls++;
      got.push(events);
    });
    try {
      await turns(3);
      assert.equal(calls, 0, 'nothing to read yet');
      writeSync(fd, 'hello');
      while (calls < 3) await turns(1); // level-triggered: not drained, called again
      assert.ok(got.every((e) => (e & READABLE) !== 0));
      assert.equal(drain(fd), 5);
      const after = calls;
      await turns(5);
      assert.ok(calls <= after + 1, 'drained: at most the wakeup already queued');
      const settled = calls;
      await turns(5);
      assert.equal(calls, settled);
      // update(0) pauses without closing.
      w.update(0);
      writeSync(fd, 'x');
      await turns(5);
      assert.equal(calls, settled);
      w.update(READABLE | WRITABLE);
      while (calls === settled) await turns(1);
      assert.ok(got.at(-1)! & WRITABLE);
      drain(fd);
    } finally {
      w.stop();
      w.stop();
      assert.equal(w.active, false);
      closeSync(fd);
    }
  });

  test('a descriptor that cannot be polled is an IpcError', T, () => {
    assert.throws(() => watchFd(987654, READABLE, () => {}), (e: unknown) => e instanceof IpcError && e.syscall === 'uv_poll_init');
  });

  test('an exception from the callback reaches uncaughtException', T, () => {
    const r = child(`
      const fd = openSync(process.env.FIFO_DIR + '/x', fsc.O_RDWR | fsc.O_NONBLOCK);
      writeSync(fd, 'data');
      const w = watchFd(fd, READABLE, () => { throw new Error('boom from callback'); });
      process.on('uncaughtException', (e) => { console.log('caught', e.message); w.stop(); });
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'caught boom from callback');
  });

  test('an unref()ed watch does not keep the process alive', T, () => {
    const r = child(`
      const fd = openSync(process.env.FIFO_DIR + '/y', fsc.O_RDWR | fsc.O_NONBLOCK);
      watchFd(fd, READABLE, () => {}, { ref: false });
      console.log('done');
    `);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'done');
  });

  test('a worker that exits or is terminated with active watches shuts down cleanly', T, () => {
    const r = child(`
      import { Worker } from 'node:worker_threads';
      // The -e code is an ES module, and so is an eval'd worker started from it.
      const body = (how) => \`
        import { parentPort } from 'node:worker_threads';
        import fs from 'node:fs';
        const { watchFd, READABLE } = await import(${JSON.stringify(pollerUrl)});
        const fd = fs.openSync(process.env.FIFO_DIR + '/w', fs.constants.O_RDWR | fs.constants.O_NONBLOCK);
        fs.writeSync(fd, 'ready');
        watchFd(fd, READABLE, () => {});
        parentPort.postMessage('watching');
        \${how}\`;
      for (const how of ['', 'process.exit(5)']) {
        const w = new Worker(body(how), { eval: true });
        const exited = new Promise((r) => w.once('exit', r));
        await new Promise((r) => w.once('message', r));
        const code = how ? await exited : await w.terminate();
        console.log('exit', code);
      }
    `);
    assert.equal(r.signal, null, r.stderr);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'exit 1\nexit 5');
  });
});
