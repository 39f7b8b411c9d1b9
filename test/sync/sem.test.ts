// POSIX semaphores, named and in memory, between real processes and C programs.
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { describe, test } from 'node:test';
import { IpcError, sem } from 'ipckit';
import { compileC, run } from '../helpers.js';
import { T, ask, peer, semName } from './sync-kit.js';

const C_SEM_POST = `
#include <fcntl.h>
#include <semaphore.h>
#include <stdio.h>
int main(int argc, char **argv) {
  sem_t *s = sem_open(argv[1], 0);
  if (s == SEM_FAILED) { perror("sem_open"); return 1; }
  if (argv[2][0] == 'p') { if (sem_post(s)) { perror("sem_post"); return 1; } }
  else { if (sem_wait(s)) { perror("sem_wait"); return 1; } }
  int v = -1; sem_getvalue(s, &v); printf("%d\\n", v);
  return 0;
}`;

describe('POSIX named semaphores', () => {
  test('a C program posts, ipckit waits; ipckit posts, C waits', T, async () => {
    const n = semName('c');
    using s = sem.open(n, { create: true, exclusive: true, value: 0, mode: 0o640 });
    assert.equal(statSync(`/dev/shm/sem.${n.slice(1)}`).mode & 0o777, 0o640);
    const cc = compileC(C_SEM_POST);
    try {
      const waiting = s.wait({ timeout: 20_000 });
      // It prints the value after its post: 1, or 0 if our waiter took it already.
      assert.ok(['0', '1'].includes(run(cc.path, [n, 'post']).trim()));
      await waiting;
      assert.equal(s.value, 0);
      s.post();
      assert.equal(run(cc.path, [n, 'wait']).trim(), '0');
    } finally {
      cc.cleanup();
    }
  });

  test('between two Node processes; tryWait, value, timeouts, abort, close', T, async () => {
    const n = semName('node');
    using s = sem.open(n, { create: true, value: 2 });
    assert.equal(s.value, 2);
    assert.equal(s.tryWait(), true);
    assert.equal(s.tryWait(), true);
    assert.equal(s.tryWait(), false);
    const p = await peer();
    assert.deepEqual(await ask(p, { op: 'sem-open', name: n }), { value: 0 });
    p.send({ op: 'sem-wait', timeout: 20_000 });
    s.post();
    assert.deepEqual(await p.next(), { acquired: true });
    const mine = s.wait({ timeout: 20_000 });
    await ask(p, { op: 'sem-post' });
    await mine;

    await assert.rejects(s.wait({ timeout: 20 }), (e: IpcError) => e instanceof IpcError && e.code === 'ETIMEDOUT' && e.path === n);
    assert.throws(() => s.waitSync({ timeout: 5 }), { code: 'ETIMEDOUT' });
    const ac = new AbortController();
    const aborted = s.wait({ signal: ac.signal });
    setTimeout(() => ac.abort(), 5);
    await assert.rejects(aborted, { name: 'AbortError' });
    const pending = s.wait();
    s.close();
    await assert.rejects(pending, { code: 'ERR_IPCKIT_CLOSED' });
    assert.throws(() => s.post(), { code: 'ERR_IPCKIT_CLOSED' });
  });

  test('exclusive, unlink, and bad input', T, () => {
    const n = semName('excl');
    using s = sem.open(n, { create: true, exclusive: true });
    assert.throws(() => sem.open(n, { create: true, exclusive: true }), { code: 'EEXIST' });
    assert.throws(() => sem.open('no-slash'), { code: 'ERR_IPCKIT_INVALID_NAME' });
    assert.throws(() => sem.open(n, { create: true, value: -1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.open(n, { create: true, value: 2 ** 31 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.open(n, { value: 1 }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    s.unlink();
    assert.equal(existsSync(`/dev/shm/sem.${n.slice(1)}`), false);
    assert.throws(() => sem.open(n), (e: IpcError) => e.code === 'ENOENT' && e.path === n);
    const buf = new SharedArrayBuffer(64);
    assert.throws(() => sem.inMemory(buf, 4, { init: 0 }), { code: 'ERR_IPCKIT_UNALIGNED_OFFSET' });
    assert.throws(() => sem.inMemory(buf, 40, { init: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => sem.inMemory(new ArrayBuffer(64) as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    const full = sem.inMemory(buf, 0, { init: 2 ** 31 - 1 });
    assert.throws(() => full.post(), (e: IpcError) => e.code === 'EOVERFLOW' && e.limit?.name === 'SEM_VALUE_MAX');
  });
});
