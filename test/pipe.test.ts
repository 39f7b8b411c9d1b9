// Anonymous pipes, popen and socketpair between real processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { IpcError, pipe, pipeCapacity, popen, socketpair, unix, type MessageSocket } from 'ipckit';
import { assertUnknownOption } from './helpers.js';

const T = { timeout: 60_000 };

function collect(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (d) => (text += d.toString()));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

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

  test('a misspelt option of pipe, popen or socketpair is a TypeError naming the nearest one', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    const calls: Array<[string, () => unknown, string | null]> = [
      ['pipe', () => pipe({ capacty: 1 << 20 } as never), 'capacity'],
      ['pipe', () => pipe({ size: 1 << 20 } as never), null],
      ['popen', () => popen('true', 'r', { arg: ['x'] } as never), 'args'],
      ['popen', () => popen('true', 'r', { shel: true } as never), 'shell'],
      ['socketpair', () => socketpair({ tpye: 'seqpacket' } as never), 'type'],
      ['socketpair', () => socketpair({ fd: true } as never), 'fds'],
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

describe('socketpair()', () => {
  test('stream: full duplex with a child that has the other end as fd 3', T, async () => {
    const [ours, theirs] = socketpair();
    assert.match(readlinkSync(`/proc/self/fd/${ours.fd}`), /^socket:/);
    // The child echoes what it reads back, upper-cased, on the same descriptor.
    const child = spawn('sh', ['-c', 'read line <&3; echo "$line" | tr a-z A-Z >&3'], {
      stdio: ['ignore', 'ignore', 'inherit', theirs],
    });
    const exited = once(child, 'exit');
    theirs.destroy();
    const reply = collect(ours);
    ours.write('ping\n');
    assert.equal(await reply, 'PING\n');
    await exited;
  });

  test('stream: peer credentials are this process', T, () => {
    const [a, b] = socketpair({ type: 'stream' });
    assert.deepEqual(a.peerCredentials(), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    a.destroy();
    b.destroy();
  });

  test('seqpacket keeps message boundaries both ways', T, async () => {
    const [a, b] = socketpair({ type: 'seqpacket' });
    const got: string[] = [];
    const done = new Promise<void>((resolve) =>
      b.on('message', (data: Buffer) => {
        got.push(data.toString());
        if (got.length === 3) resolve();
      }),
    );
    await a.send('one');
    await a.send('two two');
    await a.send(Buffer.alloc(100_000, 'x'));
    await done;
    assert.deepEqual(got.slice(0, 2), ['one', 'two two']);
    assert.equal(got[2].length, 100_000);
    const back = once(a, 'message');
    await b.send('reply');
    assert.equal(((await back)[0] as Buffer).toString(), 'reply');
    const ended = once(a, 'end');
    b.close();
    await ended;
    assert.equal(a.closed, true);
  });

  test('dgram pairs deliver datagrams; sending to a closed peer fails cleanly', T, async () => {
    const [a, b] = socketpair({ type: 'dgram' });
    const got = once(b, 'message');
    await a.send('');
    assert.equal(((await got)[0] as Buffer).length, 0, 'empty datagrams are messages');
    b.close();
    await assert.rejects(a.send('x'), (e: unknown) => e instanceof IpcError && ['ECONNREFUSED', 'EPIPE', 'ENOTCONN'].includes(e.code));
    a.close();
  });

  test('seqpacket: sending after the peer closed rejects with EPIPE (MSG_NOSIGNAL), the process lives on', T, async () => {
    const [a, b] = socketpair({ type: 'seqpacket', allowHalfOpen: true });
    const ended = once(a, 'end');
    b.close();
    await ended;
    assert.equal(a.closed, false, 'allowHalfOpen keeps our side open');
    await assert.rejects(a.send('into the void'), (e: unknown) => e instanceof IpcError && e.code === 'EPIPE' && e.syscall === 'sendmsg');
    a.close();
  });

  test('message sockets work inside a worker thread, and its exit does not disturb ours', T, async () => {
    const name = `ipckit-test-worker-${process.pid}`;
    const server = await unix.listen({ abstract: name }, { type: 'seqpacket' });
    const accepted = once(server, 'connection');
    // The worker connects with its own event loop and poller, and echoes one message.
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       import('ipckit').then(async ({ unix }) => {
         const s = await unix.connect({ abstract: workerData.name }, { type: 'seqpacket' });
         s.once('message', async (d) => { await s.send('worker:' + d); s.close(); });
       });`,
      { eval: true, workerData: { name } },
    );
    const [a] = (await accepted) as [MessageSocket];
    const reply = once(a, 'message');
    await a.send('ping');
    assert.equal(((await reply)[0] as Buffer).toString(), 'worker:ping');
    await once(worker, 'exit');
    server.close();
    // Our own watcher still works after the worker's environment went away.
    const [c, d] = socketpair({ type: 'seqpacket' });
    const got = once(d, 'message');
    await c.send('after');
    assert.equal(((await got)[0] as Buffer).toString(), 'after');
    for (const s of [a, c, d]) s.close();
  });

  test('empty seqpacket messages are refused (indistinguishable from EOF)', T, () => {
    const [a, b] = socketpair({ type: 'seqpacket' });
    assert.throws(() => a.send(''), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    a.close();
    b.close();
  });
});
