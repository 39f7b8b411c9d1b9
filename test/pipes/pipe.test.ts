// Anonymous pipes and popen between real processes (socketpair: socketpair.test.ts).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, test } from 'node:test';
import { IpcError, pipe, pipeCapacity, popen } from 'ipckit';
import { assertUnknownOption, collect } from '../helpers.js';

const T = { timeout: 60_000 };

describe('pipe()', () => {
  test('parent -> child: the child reads a real pipe (blocking, as cat expects) until EOF', T, async () => {
    const [r, w] = pipe();
    assert.match(readlinkSync(`/proc/self/fd/${r.fd}`), /^pipe:\[\d+\]$/, 'a pipe(2), not a socketpair');
    // `stat -L -c %F /dev/stdin` proves the child's stdin is a FIFO (pipe).
    const child = spawn('sh', ['-c', 'stat -L -c %F /dev/stdin; cat'], { stdio: [r, 'pipe', 'inherit'] });
    const exited = once(child, 'exit');
    r.destroy(); // our copy of the read end: the child holds its own
    const output = collect(child.stdout!);
    w.write('line one\n');
    w.end('line two\n');
    const [code] = await exited;
    assert.equal(code, 0);
    assert.equal(await output, 'fifo\nline one\nline two\n');
  });

  test('child -> parent through the write end given as fd 3', T, async () => {
    const [r, w] = pipe();
    const child = spawn('sh', ['-c', 'echo "to fd 3" >&3'], { stdio: ['ignore', 'ignore', 'inherit', w] });
    const exited = once(child, 'exit');
    w.destroy();
    assert.equal(await collect(r), 'to fd 3\n');
    await exited;
  });

  test('writing after the reader has gone is an EPIPE error, not a SIGPIPE', T, async () => {
    const [r, w] = pipe();
    r.destroy();
    await once(r, 'close');
    w.write('x');
    const [err] = (await once(w, 'error')) as [NodeJS.ErrnoException];
    assert.equal(err.code, 'EPIPE');
    assert.equal(process.exitCode ?? 0, 0);
  });

  test('capacity can be set and is reported', T, async () => {
    const [r, w] = pipe({ capacity: 1 << 20 });
    assert.equal(pipeCapacity(w), 1 << 20);
    assert.equal(pipeCapacity(r.fd), 1 << 20, 'both ends share one buffer');
    r.destroy();
    w.destroy();
  });

  test('bad options throw before any system call', () => {
    assert.throws(() => pipe({ capacity: -1 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => pipe('x' as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });

  test('a misspelt option of pipe or popen is a TypeError naming the nearest one', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    const calls: Array<[string, () => unknown, string | null]> = [
      ['pipe', () => pipe({ capacty: 1 << 20 } as never), 'capacity'],
      ['pipe', () => pipe({ size: 1 << 20 } as never), null],
      ['popen', () => popen('true', 'r', { arg: ['x'] } as never), 'args'],
      ['popen', () => popen('true', 'r', { shel: true } as never), 'shell'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.equal(readdirSync('/proc/self/fd').length, fds, 'no descriptor was made');
  });
});

describe('popen()', () => {
  test("'r': child -> parent, with the exit status", T, async () => {
    const p = popen('echo hello from $0; exit 7', 'r');
    const text = collect(p.stream);
    assert.deepEqual(await p.exited, { code: 7, signal: null });
    assert.equal(await text, 'hello from /bin/sh\n');
  });

  test("'w': parent -> child stdin, close() waits like pclose", T, async () => {
    const p = popen('test "$(wc -c)" -eq 5', 'w');
    p.stream.write('12345');
    assert.deepEqual(await p.close(), { code: 0, signal: null });
  });

  test('without a shell, and a missing program rejects with ENOENT', T, async () => {
    const ok = popen('/bin/echo', 'r', { args: ['a', 'b'] });
    assert.equal(await collect(ok.stream), 'a b\n');
    await ok.exited;
    const missing = popen('/nonexistent/program', 'r', { args: [] });
    await assert.rejects(missing.exited, (e: unknown) => e instanceof IpcError && e.code === 'ENOENT');
  });

  test('a killed child reports its signal', T, async () => {
    const p = popen('sleep 30', 'r');
    p.child.kill('SIGTERM');
    assert.deepEqual(await p.exited, { code: null, signal: 'SIGTERM' });
    p.stream.destroy();
  });

  test('misuse', () => {
    assert.throws(() => popen('true', 'x' as 'r'), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => popen('', 'r'), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => popen('true', 'r', { shell: true, args: [] }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
  });
});
