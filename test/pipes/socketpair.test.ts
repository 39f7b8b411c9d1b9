// socketpair(): two connected Unix sockets between real processes and threads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdirSync, readlinkSync } from 'node:fs';
import { text } from 'node:stream/consumers';
import { describe, test } from 'node:test';
import { Worker } from 'node:worker_threads';
import { IpcError, socketpair, unix, type MessageSocket } from 'ipckit';
import { assertUnknownOption } from '../helpers.js';

const T = { timeout: 60_000 };

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
    const reply = text(ours);
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

  test('a misspelt option of socketpair is a TypeError naming the nearest one', async () => {
    const fds = readdirSync('/proc/self/fd').length;
    await assertUnknownOption(() => socketpair({ tpye: 'seqpacket' } as never), 'type', 'socketpair');
    await assertUnknownOption(() => socketpair({ fd: true } as never), 'fds', 'socketpair');
    assert.equal(readdirSync('/proc/self/fd').length, fds, 'no descriptor was made');
  });
});
