// `ipckit sem ...` and the semaphore sections of `ipckit ls`, run as real
// processes against real kernel objects and checked with the library and ipcs.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { sem } from 'ipckit';
import { hex, ipckit, ok } from './cli-run.js';
import { has, run, uniqueKey, uniqueName, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };

const names = removedAfter<string>((n) => sem.unlink(n));
const ids = removedAfter<number>((id) => sem.sysv.fromId(id).remove());

describe('ipckit sem with POSIX names', () => {
  test('create, post, get, wait, wait --timeout, ls, rm', T, async () => {
    const n = uniqueName('cli-sem');
    names.add(n);
    await ok(['sem', 'create', n, '--value', '1', '--mode', '640']);
    using s = sem.open(n);
    assert.equal(s.value, 1);
    await ok(['sem', 'post', n, '--count', '2']);
    assert.equal((await ok(['sem', 'get', n])).trim(), '3');
    await ok(['sem', 'wait', n]);
    assert.equal(s.value, 2);
    s.tryWait();
    s.tryWait();
    const r = await ipckit(['sem', 'wait', n, '--timeout', '30']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ipckit: ETIMEDOUT.*sem_clockwait/);
    s.post();
    const rows = JSON.parse(await ok(['ls', 'posix-sem', '--json'])) as Array<{ name: string; value: number; mode: string }>;
    assert.deepEqual(
      rows.filter((x) => x.name === n).map((x) => [x.value, x.mode]),
      [[1, '0640']],
    );
    await ok(['sem', 'rm', n]);
    assert.throws(() => sem.open(n), { code: 'ENOENT' });
    const missing = await ipckit(['sem', 'get', n]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /ENOENT/);
  });
});

describe('ipckit sem with System V keys and ids', () => {
  test('create --count --value prints the id; ipcs -s sees it; post/wait/get/ls/rm', T, async () => {
    const key = uniqueKey();
    const id = Number(await ok(['sem', 'create', hex(key), '--count', '3', '--value', '2']));
    ids.add(id);
    const set = sem.sysv.fromId(id);
    assert.deepEqual(set.getAll(), [2, 2, 2]);
    if (has('ipcs')) assert.match(run('ipcs', ['-s']), new RegExp(`^${hex(key)}\\s+${id}\\s+\\S+\\s+600\\s+3\\s*$`, 'm'));
    await ok(['sem', 'post', `id:${id}`, '--index', '2', '--count', '5']);
    await ok(['sem', 'wait', hex(key), '--index', '0']);
    assert.deepEqual(set.getAll(), [1, 2, 7]);
    const info = JSON.parse(await ok(['sem', 'get', `id:${id}`, '--json'])) as { count: number; semaphores: Array<{ value: number; pid: number }> };
    assert.equal(info.count, 3);
    assert.deepEqual(info.semaphores.map((x) => x.value), [1, 2, 7]);
    assert.ok(info.semaphores[2]!.pid > 0);
    const rows = JSON.parse(await ok(['ls', 'sysv-sem', '--json'])) as Array<{ id: number; semaphores: number; extra: { values: number[] } }>;
    const row = rows.find((x) => x.id === id)!;
    assert.equal(row.semaphores, 3);
    assert.deepEqual(row.extra.values, [1, 2, 7]);
    assert.match(await ok(['ls', 'sysv-sem']), new RegExp(`${hex(key)}\\s+${id}.*\\s3\\s+1 2 7`));

    // A waiting `ipckit sem wait` is woken by a post from the library.
    set.setValue(1, 0);
    const waiting = ipckit(['sem', 'wait', `id:${id}`, '--index', '1']);
    while (set.waitingCount(1) === 0) await new Promise((res) => setTimeout(res, 5));
    await set.op([{ index: 1, delta: 1 }]);
    assert.equal((await waiting).code, 0);
    assert.equal(set.getValue(1), 0);

    await ok(['sem', 'rm', `id:${id}`]);
    ids.delete(id);
    assert.throws(() => sem.sysv.fromId(id), { code: 'EINVAL' });
  });

  test("'private' creates a new set; bad options are refused", T, async () => {
    const id = Number(await ok(['sem', 'create', 'private']));
    ids.add(id);
    assert.equal(sem.sysv.fromId(id).count, 1);
    // Exit status 2: the command line is wrong; 1: the object said no.
    for (const [status, ...args] of [
      [2, 'sem', 'create', 'private', '--count', '0'],
      [2, 'sem', 'create', '/x', '--count', '2'],
      [2, 'sem', 'create', 'private', '--value', '40000'],
      [2, 'sem', 'wait', `id:${id}`, '--timeout', 'soon'],
      [1, 'sem', 'post', `id:${id}`, '--index', '4'],
      [1, 'sem', 'wait', 'id:999999999'],
    ] as Array<[number, ...string[]]>) {
      const r = await ipckit(args);
      assert.equal(r.code, status, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /^ipckit: /);
    }
    const past = await ipckit(['sem', 'post', `id:${id}`, '--index', '4']);
    assert.match(past.stderr, /^ipckit: --index 4 is past the end: the set has 1 semaphore \(0 to 0\)$/m);
  });
});
