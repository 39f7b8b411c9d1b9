// Unix domain sockets between real processes: ipckit peers, socat, Python.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { after, describe, test } from 'node:test';
import { IpcError, framing, shm, socketpair, unix, type MessageSocket } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, collect, fixturesDir, has, startPeer, withoutCapabilities } from '../helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-unix-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let counter = 0;
const sockPath = (tag = 's') => join(dir, `${tag}${counter++}.sock`);
const abstractName = (tag: string) => `ipckit-test-${tag}-${process.pid}-${counter++}`;
const openFds = () => readdirSync('/proc/self/fd').length;
const haveSocat = has('socat');
const havePython = has('python3');
const haveFlock = has('flock');

/** Starts socat and resolves once it reports that it listens (socat -d -d logs it). */
async function socatListening(args: string[]): Promise<ChildProcess> {
  const child = spawn('socat', ['-d', '-d', ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (d) => {
      log += d.toString();
      if (/listening on/.test(log)) resolve();
    });
    child.once('exit', (code) => reject(new Error(`socat exited ${code} before listening: ${log}`)));
  });
  return child;
}

function nextMessage(socket: MessageSocket): Promise<[Buffer, { fds: readonly number[]; from?: string; takeFds(): number[] }]> {
  return once(socket, 'message') as Promise<[Buffer, { fds: readonly number[]; from?: string; takeFds(): number[] }]>;
}

describe('unix stream sockets', () => {
  test('server <-> unrelated client process; peer credentials are the real pid/uid both ways', T, async () => {
    const p = sockPath();
    const server = await unix.listen(p);
    assert.equal(statSync(p).mode & 0o777, 0o600, 'socket file mode defaults to 0o600');
    const peer = startPeer('unix-peer');
    const { pid } = await peer.next<{ pid: number }>();
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p });
    assert.deepEqual(await peer.next(), { connected: true });
    const [conn] = (await accepted) as [import('ipckit').UnixConnection];
    assert.deepEqual(conn.peerCredentials(), { pid, uid: process.getuid!(), gid: process.getgid!() });
    peer.send({ op: 'creds' });
    assert.deepEqual(await peer.next(), { pid: process.pid, uid: process.getuid!(), gid: process.getgid!() });
    conn.write('hello peer');
    assert.deepEqual(await peer.next(), { event: 'data', data: 'hello peer' });
    peer.send({ op: 'exit' });
    await peer.exited;
    conn.destroy();
    server.close();
    assert.equal(existsSync(p), false, 'close() removes the socket file');
  });

  test('allowUids rejects other peers before the connection is seen', T, async () => {
    const p = sockPath();
    const server = await unix.listen(p, { allowUids: [process.getuid!() + 4242] });
    let connections = 0;
    server.on('connection', () => connections++);
    const rejected = once(server, 'peerRejected');
    const client = await unix.connect(p);
    const [cred] = await rejected;
    assert.equal((cred as { pid: number }).pid, process.pid);
    client.resume();
    await once(client, 'close');
    assert.equal(connections, 0);
    server.close();
  });

  test('a stale socket file left by a killed server is reclaimed; a live server is never stolen', T, async () => {
    const p = sockPath('stale');
    // A real server process that dies without cleaning up (SIGKILL).
    const py = startPeer('python3', ['-c', `import socket,sys,time\ns=socket.socket(socket.AF_UNIX)\ns.bind(${JSON.stringify(p)})\ns.listen()\nprint('{"ready":true}',flush=True)\ntime.sleep(60)`]);
    await py.next();
    // Live: refused, and its file is untouched.
    const ino = lstatSync(p).ino;
    await assert.rejects(unix.listen(p), (e: unknown) => e instanceof IpcError && e.code === 'EADDRINUSE' && e.path === p);
    assert.equal(lstatSync(p).ino, ino);
    py.child.kill('SIGKILL');
    await py.exited;
    assert.ok(lstatSync(p).isSocket(), 'the dead server left its socket file');
    await assert.rejects(unix.connect(p), { code: 'ECONNREFUSED' });
    await assert.rejects(unix.listen(p, { reclaim: false }), { code: 'EADDRINUSE' });
    const server = await unix.listen(p);
    const c = await unix.connect(p);
    c.destroy();
    // A second ipckit server on the same live path is refused too.
    await assert.rejects(unix.listen(p), { code: 'EADDRINUSE' });
    server.close();
  });

  test('the socket file mode is enforced: 0o600 of another owner refuses a process without capabilities', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    const p = sockPath('perm');
    const server = await unix.listen(p, { mode: 0o600 });
    const { chmodSync, chownSync } = await import('node:fs');
    chownSync(p, 65534, 65534);
    const [cmd, args] = withoutCapabilities(process.execPath, [join(fixturesDir, 'unix-peer.js')]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'connect', address: p });
    const reply = await peer.next<{ error: { code: string; name: string } }>();
    assert.deepEqual({ code: reply.error.code, name: reply.error.name }, { code: 'EACCES', name: 'IpcError' });
    chmodSync(p, 0o606);
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p });
    assert.deepEqual(await peer.next(), { connected: true });
    const [conn] = (await accepted) as [import('node:net').Socket];
    peer.send({ op: 'exit' });
    await peer.exited;
    conn.destroy();
    server.close();
  });

  test('never replaces a file that is not a socket', T, async () => {
    const p = sockPath('plain');
    writeFileSync(p, 'precious');
    await assert.rejects(unix.listen(p), (e: unknown) => e instanceof IpcError && e.code === 'EADDRINUSE' && e.path === p && !/holds a lock/.test(e.message));
    await assert.rejects(unix.listen(p, { type: 'dgram' }), { code: 'EADDRINUSE' });
    assert.throws(() => unix.dgram({ bind: p }), { code: 'EADDRINUSE' });
    assert.equal(readFileSync(p, 'utf8'), 'precious');
    unlinkSync(p);
    // Nor a symbolic link, even one that points at a stale socket file.
    const target = sockPath('target');
    const dead = await unix.listen(target, { unlinkOnClose: false });
    dead.close();
    const link = sockPath('link');
    symlinkSync(target, link);
    await assert.rejects(unix.listen(link), { code: 'EADDRINUSE' });
    assert.ok(lstatSync(link).isSymbolicLink(), 'the link is still there');
    assert.ok(lstatSync(target).isSocket(), 'and so is the stale file it points at');
    unlinkSync(link);
    unlinkSync(target);
  });

  test("close() keeps the file with unlinkOnClose: false, and never removes a successor's socket", T, async () => {
    const p = sockPath();
    const kept = await unix.listen(p, { unlinkOnClose: false });
    kept.close();
    assert.ok(lstatSync(p).isSocket());
    // Someone removes our file and a new server takes the path: our close() must leave theirs.
    const first = await unix.listen(p); // reclaims the stale file
    unlinkSync(p);
    const second = await unix.listen(p);
    first.close();
    assert.ok(lstatSync(p).isSocket(), "the successor's socket is still there");
    const c = await unix.connect(p);
    c.destroy();
    second.close();
    assert.equal(existsSync(p), false);
  });

  test('abstract namespace: no file, reachable by name', T, async () => {
    const name = abstractName('abs');
    const server = await unix.listen({ abstract: name });
    assert.equal(server.address(), `@${name}`);
    const got = new Promise<string>((resolve) => server.once('connection', (c) => collect(c).then(resolve)));
    const client = await unix.connect(`\0${name}`);
    assert.equal(client.remotePath, `\0${name}`);
    client.end('via abstract');
    assert.equal(await got, 'via abstract');
    server.close();
  });

  test('bad addresses: too long is a RangeError before any syscall; missing is ENOENT', T, async () => {
    const long = join(dir, 'x'.repeat(120));
    await assert.rejects(unix.listen(long), (e: unknown) => e instanceof RangeError && (e as { code?: string }).code === 'ERR_IPCKIT_INVALID_NAME' && /107/.test(e.message));
    await assert.rejects(unix.connect(long), { code: 'ERR_IPCKIT_INVALID_NAME' });
    await assert.rejects(unix.listen({ abstract: 'a'.repeat(108) }), { code: 'ERR_IPCKIT_INVALID_NAME' });
    await assert.rejects(unix.connect(''), { code: 'ERR_IPCKIT_INVALID_NAME' });
    await assert.rejects(unix.connect(42 as never), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    const missing = join(dir, 'missing.sock');
    await assert.rejects(unix.connect(missing), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT' && e.path === missing && e.syscall === 'connect');
    // Exactly 107 bytes fits.
    const exact = join(dir, 'y'.repeat(107 - dir.length - 1));
    assert.equal(Buffer.byteLength(exact), 107);
    const s = await unix.listen(exact);
    s.close();
  });

  test('peer killed mid-frame: the framed channel errors, no hang', T, async () => {
    const p = sockPath();
    const server = await unix.listen(p);
    const peer = startPeer('unix-peer');
    await peer.next();
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p });
    await peer.next();
    const [conn] = (await accepted) as [import('node:net').Socket];
    const ch = framing.channel(conn);
    const frames: Buffer[] = [];
    ch.on('message', (f: Buffer) => frames.push(f));
    const failed = once(ch, 'error');
    // One whole frame, then a header announcing 100 bytes followed by 10.
    peer.send({ op: 'write', hex: framing.encode('whole').toString('hex') + '00000064' + '41'.repeat(10) });
    await peer.next();
    peer.child.kill('SIGKILL');
    const [err] = (await failed) as [IpcError];
    assert.equal(err.code, 'EPROTO');
    assert.match(err.message, /ended inside a frame/);
    assert.deepEqual(frames.map(String), ['whole']);
    server.close();
  });

  test('an oversized frame header is rejected at once, without allocating the frame', T, async () => {
    const [a, b] = socketpair();
    const ch = framing.channel(b, { maxFrameSize: 1024 });
    const failed = once(ch, 'error');
    const before = process.memoryUsage().arrayBuffers;
    a.write(Buffer.from('fffffff0', 'hex')); // announces ~4 GiB
    const [err] = (await failed) as [IpcError];
    assert.equal(err.code, 'EMSGSIZE');
    assert.deepEqual(err.limit, { name: 'options.maxFrameSize', value: 1024 });
    assert.ok(process.memoryUsage().arrayBuffers - before < 64 * 1024 * 1024);
    a.destroy();
  });
});

/** A socket file left behind by a server process that was SIGKILLed: nobody is bound to it. */
async function staleSocketFile(path: string): Promise<void> {
  const peer = startPeer('unix-peer');
  await peer.next();
  peer.send({ op: 'listen', address: path });
  assert.deepEqual(await peer.next(), { listening: true });
  peer.child.kill('SIGKILL');
  await peer.exited;
  assert.ok(lstatSync(path).isSocket(), 'the killed server left its socket file');
}

// flock(1) processes holding a directory lock; killed in teardown if a test did not.
const lockHolders = new Set<ChildProcess>();
after(() => {
  for (const child of lockHolders) killGroup(child);
});

function killGroup(child: ChildProcess): void {
  try {
    process.kill(-child.pid!, 'SIGKILL');
  } catch {
    /* already gone */
  }
}

/** Starts a process holding an exclusive flock on `path`; resolves once it holds it, with a release(). */
async function holdLock(path: string): Promise<{ release(): Promise<void> }> {
  // -o: the lock stays with flock itself, not with its command, so flock's
  // exit releases it. Its own process group, so teardown ends the sleep too.
  const child = spawn('flock', ['-o', path, '-c', 'echo locked; exec sleep 30'], { stdio: ['ignore', 'pipe', 'inherit'], detached: true });
  lockHolders.add(child);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d) => {
      out += d.toString();
      if (out.includes('locked')) resolve();
    });
    child.once('exit', (code) => reject(new Error(`flock exited ${code} before taking the lock`)));
  });
  return {
    async release() {
      killGroup(child);
      await exited; // flock's descriptors, and with them the lock, are gone by the time it is reaped
      lockHolders.delete(child);
    },
  };
}

describe('stale socket files and the directory lock', () => {
  test('while another process holds flock on the directory: a fresh path binds at once, a stale one is retried on a timer without blocking the event loop, then EADDRINUSE; reclaimed once the lock is gone', { ...T, skip: !haveFlock && 'flock (util-linux) is not installed' }, async () => {
    const lockDir = mkdtempSync(join(dir, 'locked-'));
    const stale = join(lockDir, 'stale.sock');
    await staleSocketFile(stale);
    const holder = await holdLock(lockDir);
    try {
      // A fresh path takes no lock.
      let t0 = performance.now();
      const fresh = await unix.listen(join(lockDir, 'fresh.sock'));
      try {
        assert.ok(performance.now() - t0 < 1000, `a fresh path took ${performance.now() - t0} ms`);
        // A live server's path is refused without waiting for the lock either.
        t0 = performance.now();
        await assert.rejects(unix.listen(join(lockDir, 'fresh.sock')), (e: unknown) => e instanceof IpcError && e.code === 'EADDRINUSE' && !/holds a lock/.test(e.message));
        assert.ok(performance.now() - t0 < 1000, `a live path took ${performance.now() - t0} ms to refuse`);
      } finally {
        fresh.close();
      }

      let ticks = 0;
      const timer = setInterval(() => ticks++, 10);
      t0 = performance.now();
      try {
        await assert.rejects(
          unix.listen(stale),
          (e: unknown) =>
            e instanceof IpcError &&
            e.code === 'EADDRINUSE' &&
            e.syscall === 'bind' &&
            e.path === stale &&
            e.message.includes(`the stale socket file could not be reclaimed because another process holds a lock on the directory '${lockDir}'`),
        );
      } finally {
        clearInterval(timer);
      }
      const waited = performance.now() - t0;
      assert.ok(waited >= 1900, `gave up after ${waited} ms, before its 2 s bound`);
      assert.ok(ticks >= 50, `only ${ticks} timer ticks in ${Math.round(waited)} ms: the event loop was blocked`);
      assert.ok(lstatSync(stale).isSocket(), 'the stale file is left alone while the lock is held');
      // Synchronous binds try once.
      assert.throws(() => unix.dgram({ bind: stale }), (e: unknown) => e instanceof IpcError && e.code === 'EADDRINUSE' && /another process holds a lock/.test(e.message));
    } finally {
      await holder.release();
    }
    const server = await unix.listen(stale);
    try {
      const c = await unix.connect(stale);
      assert.equal(c.peerCredentials().pid, process.pid);
      c.destroy();
    } finally {
      server.close();
    }
    assert.equal(existsSync(stale), false);
    rmSync(lockDir, { recursive: true, force: true });
  });

  test('two processes racing to reclaim the same stale path: exactly one listens, and it is the one reached', T, async () => {
    const p = sockPath('race');
    await staleSocketFile(p);
    const peers = [startPeer('unix-peer'), startPeer('unix-peer')];
    const pids = await Promise.all(peers.map(async (peer) => (await peer.next<{ pid: number }>()).pid));
    for (let round = 0; round < 20; round++) {
      for (const peer of peers) peer.send({ op: 'listen', address: p, unlinkOnClose: false });
      const replies = await Promise.all(peers.map((peer) => peer.next<{ listening?: true; error?: { code: string } }>()));
      const winners = replies.flatMap((r, i) => (r.listening ? [i] : []));
      assert.equal(winners.length, 1, `round ${round}: ${JSON.stringify(replies)}`);
      const w = winners[0]!;
      assert.equal(replies[1 - w]!.error?.code, 'EADDRINUSE', `round ${round}: ${JSON.stringify(replies)}`);
      const c = await unix.connect(p);
      assert.equal(c.peerCredentials().pid, pids[w], `round ${round}: the path leads to the winner`);
      c.destroy();
      // The winner closes and leaves its file: stale again for the next round.
      peers[w]!.send({ op: 'close-server' });
      assert.deepEqual(await peers[w]!.next(), { closed: true });
      await assert.rejects(unix.connect(p), { code: 'ECONNREFUSED' });
    }
    for (const peer of peers) {
      peer.send({ op: 'exit' });
      await peer.exited;
    }
    unlinkSync(p);
  });
});

describe('unix seqpacket and datagram sockets', () => {
  test('seqpacket server with an unrelated client: boundaries kept, credentials, end when the peer dies', T, async () => {
    const p = sockPath();
    const server = await unix.listen(p, { type: 'seqpacket' });
    const peer = startPeer('unix-peer');
    const { pid } = await peer.next<{ pid: number }>();
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p, type: 'seqpacket' });
    await peer.next();
    const [conn] = (await accepted) as [MessageSocket];
    assert.equal(conn.peerCredentials().pid, pid);
    const msgs: string[] = [];
    const three = new Promise<void>((resolve) =>
      conn.on('message', (d: Buffer) => {
        msgs.push(d.toString());
        if (msgs.length === 3) resolve();
      }),
    );
    for (const data of ['a', 'bb', 'ccc']) {
      peer.send({ op: 'send', data });
      await peer.next();
    }
    await three;
    assert.deepEqual(msgs, ['a', 'bb', 'ccc']);
    await conn.send('back');
    // recvmsg on a connected seqpacket socket names the peer: our listening path.
    assert.deepEqual(await peer.next(), { event: 'message', data: 'back', from: p });
    const ended = once(conn, 'end');
    peer.child.kill('SIGKILL');
    await ended;
    assert.equal(conn.closed, true);
    server.close();
    assert.equal(existsSync(p), false);
  });

  test('datagram server: messages carry the sender address; replies go back to it', T, async () => {
    const p = sockPath('dg');
    const server = await unix.listen(p, { type: 'dgram' });
    const peer = startPeer('unix-peer');
    await peer.next();
    const back = sockPath('dgc');
    peer.send({ op: 'connect', address: p, type: 'dgram', bind: back });
    await peer.next();
    const got = nextMessage(server);
    peer.send({ op: 'send', data: 'dgram one' });
    await peer.next();
    const [data, info] = await got;
    assert.equal(data.toString(), 'dgram one');
    assert.equal(info.from, back);
    await server.send('reply', { to: info.from! });
    assert.deepEqual(await peer.next(), { event: 'message', data: 'reply', from: p });
    peer.send({ op: 'exit' });
    await peer.exited;
    server.close();
    assert.equal(existsSync(p), false);
    assert.equal(existsSync(back), false, 'the peer removed its bound socket file at exit');
    await assert.rejects(unix.connect(p, { type: 'dgram' }), { code: 'ENOENT' });
  });
});

describe('datagram sockets without a server', () => {
  test('unix.dgram() + connect(): sends without `to`, sender address seen by the receiver', T, async () => {
    const p1 = sockPath('d1');
    const p2 = sockPath('d2');
    const a = unix.dgram({ bind: p1 });
    const b = unix.dgram({ bind: p2 });
    a.connect(p2);
    const got = nextMessage(b);
    await a.send('connected datagram');
    const [data, info] = await got;
    assert.equal(data.toString(), 'connected datagram');
    assert.equal(info.from, p1);
    assert.throws(() => a.connect(join(dir, 'x'.repeat(200))), { code: 'ERR_IPCKIT_INVALID_NAME' });
    a.close();
    b.close();
    assert.equal(existsSync(p1) || existsSync(p2), false);
  });
});

describe('misspelt options', () => {
  test('every unix call refuses a misspelt option with a TypeError naming the nearest one', T, async () => {
    const p = sockPath('typo');
    const [a, b] = unix.socketpair({ type: 'seqpacket' });
    const fds = openFds();
    const calls: Array<[string, () => unknown, string | null]> = [
      ['listen', () => unix.listen(p, { allowUid: [0] } as never), 'allowUids'],
      ['listen', () => unix.listen(p, { type: 'seqpacket', maxMessagSize: 64 } as never), 'maxMessageSize'],
      ['listen', () => unix.listen(p, { permissions: 0o600 } as never), null],
      ['listen', () => unix.listen(p, { unlinkOnclose: false } as never), 'unlinkOnClose'],
      ['connect', () => unix.connect(p, { timout: 5 } as never), 'timeout'],
      ['connect', () => unix.connect(p, { type: 'dgram', bnd: sockPath('typo-b') } as never), 'bind'],
      ['dgram', () => unix.dgram({ bnid: sockPath('typo-d') } as never), 'bind'],
      ['socketpair', () => unix.socketpair({ type: 'seqpacket', allowHalfopen: true } as never), 'allowHalfOpen'],
      ['fromFd', () => unix.fromFd(a.fd, { fd: true } as never), 'fds'],
      ['MessageSocket.send', () => a.send('x', { fd: [b.fd] } as never), 'fds'],
      ['MessageSocket.send', () => a.send('x', { too: p } as never), 'to'],
    ];
    try {
      for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
      assert.equal(existsSync(p), false, 'no socket file');
      assert.equal(readdirSync(dir).some((f) => f.startsWith('typo-')), false, 'no bound socket file');
      assert.equal(openFds(), fds, 'no descriptor was made');
    } finally {
      a.close();
      b.close();
    }
  });
});

describe('interop with socat', { skip: !haveSocat && 'socat is not installed' }, () => {
  test('ipckit stream client <-> socat server', T, async () => {
    const p = sockPath('socat');
    const socat = await socatListening([`UNIX-LISTEN:${p}`, 'EXEC:tr a-z A-Z']);
    const client = await unix.connect(p);
    const reply = collect(client);
    client.end('hello socat\n');
    assert.equal(await reply, 'HELLO SOCAT\n');
    await once(socat, 'exit');
  });

  test('socat datagram sender -> ipckit datagram socket', T, async () => {
    const p = sockPath('dgsocat');
    const server = await unix.listen(p, { type: 'dgram' });
    const got = nextMessage(server);
    const socat = spawn('socat', ['-u', 'STDIN', `UNIX-SENDTO:${p}`], { stdio: ['pipe', 'ignore', 'inherit'] });
    socat.stdin!.end('datagram from socat');
    const [data] = await got;
    assert.equal(data.toString(), 'datagram from socat');
    await once(socat, 'exit');
    server.close();
  });

  test('ipckit seqpacket server <-> socat seqpacket client', T, async () => {
    const p = sockPath('sqsocat');
    const server = await unix.listen(p, { type: 'seqpacket', allowHalfOpen: true });
    server.on('connection', (conn: MessageSocket) => {
      conn.on('message', async (d: Buffer) => {
        await conn.send(`got ${d.length} bytes`);
        await conn.send('second packet');
      });
      conn.on('end', () => setImmediate(() => conn.close()));
    });
    const socat = spawn('socat', ['-t', '5', '-', `UNIX-CONNECT:${p},type=5`], { stdio: ['pipe', 'pipe', 'inherit'] });
    const out = collect(socat.stdout!);
    socat.stdin!.end('packet');
    assert.equal(await out, 'got 6 bytessecond packet');
    server.close();
  });

  test('ipckit seqpacket client <-> socat seqpacket server', T, async () => {
    const p = sockPath('sqsocat2');
    const socat = await socatListening([`UNIX-LISTEN:${p},type=5`, 'EXEC:cat']);
    const client = await unix.connect(p, { type: 'seqpacket' });
    const got = nextMessage(client);
    await client.send('echo me');
    assert.equal((await got)[0].toString(), 'echo me');
    client.close();
    await once(socat, 'exit');
  });

  test('abstract-namespace socket reached by socat ABSTRACT-CONNECT', T, async () => {
    const name = abstractName('socat');
    const server = await unix.listen({ abstract: name });
    const got = new Promise<string>((resolve) => server.once('connection', (c) => collect(c).then(resolve)));
    const socat = spawn('socat', ['-u', 'STDIN', `ABSTRACT-CONNECT:${name}`], { stdio: ['pipe', 'ignore', 'inherit'] });
    // Listened for before anything is awaited: socat may exit before its data has been read here.
    const exited = once(socat, 'exit');
    socat.stdin!.end('abstract hello');
    assert.equal(await got, 'abstract hello');
    await exited;
    server.close();
  });
});

describe('fd passing (SCM_RIGHTS)', () => {
  test('a memfd region sent to an unrelated process is mapped there and shares writes', T, async () => {
    const p = sockPath('fd');
    const server = await unix.listen(p, { type: 'seqpacket' });
    const peer = startPeer('unix-peer');
    await peer.next();
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p, type: 'seqpacket' });
    await peer.next();
    const [conn] = (await accepted) as [MessageSocket];
    using region = shm.anonymous(8192, { name: 'ipckit-fd-test' });
    region.write('written by A', 0);
    await conn.send('here is memory', { fds: [region] });
    assert.deepEqual(await peer.next(), { event: 'fd', data: 'here is memory', size: 8192 });
    peer.send({ op: 'read', offset: 0, length: 12 });
    assert.deepEqual(await peer.next(), { data: 'written by A' });
    region.write('later write', 100);
    peer.send({ op: 'read', offset: 100, length: 11 });
    assert.deepEqual(await peer.next(), { data: 'later write' });
    peer.send({ op: 'write-region', offset: 200, data: 'from B' });
    await peer.next();
    assert.equal(region.read(200, 6).toString(), 'from B');
    peer.send({ op: 'exit' });
    await peer.exited;
    server.close();
  });

  for (const type of ['seqpacket', 'stream'] as const)
  test(`an fd sent by Python's socket.send_fds over ${type} is received`, { ...T, skip: !havePython && 'python3 is missing' }, async () => {
    const p = sockPath('py');
    const file = join(dir, 'py-file.txt');
    writeFileSync(file, 'contents python opened');
    const server = type === 'seqpacket' ? await unix.listen(p, { type }) : await unix.listen(p, { fds: true });
    const got = new Promise<[Buffer, number[]]>((resolve) =>
      server.once('connection', (c: MessageSocket) => c.once('message', (d: Buffer, info) => resolve([d, info.takeFds()]))),
    );
    const py = startPeer('python3', [
      '-c',
      `import socket,os\ns=socket.socket(socket.AF_UNIX, socket.SOCK_${type === 'seqpacket' ? 'SEQPACKET' : 'STREAM'})\ns.connect(${JSON.stringify(p)})\nfd=os.open(${JSON.stringify(file)}, os.O_RDONLY)\nsocket.send_fds(s, [b'from python'], [fd])\nprint('{"sent":true}',flush=True)\ns.recv(1)`,
    ]);
    const [data, fds] = await got;
    assert.equal(data.toString(), 'from python');
    assert.equal(fds.length, 1);
    assert.equal(readFileSync(fds[0], 'utf8'), 'contents python opened');
    const { closeSync } = await import('node:fs');
    closeSync(fds[0]);
    py.child.kill();
    await py.exited;
    server.close();
  });

  test('over a stream socket (fds: true) to an unrelated process; a large send arrives whole with its fd once', T, async () => {
    const p = sockPath('sfd');
    const server = await unix.listen(p, { fds: true });
    const peer = startPeer('unix-peer');
    await peer.next();
    const accepted = once(server, 'connection');
    peer.send({ op: 'connect', address: p, fds: true });
    await peer.next();
    const [conn] = (await accepted) as [MessageSocket];
    assert.equal(conn.type, 'stream');
    using region = shm.anonymous(4096);
    region.write('stream fd', 0);
    await conn.send('memory', { fds: [region] });
    assert.deepEqual(await peer.next(), { event: 'fd', data: 'memory', size: 4096 });
    peer.send({ op: 'read', offset: 0, length: 9 });
    assert.deepEqual(await peer.next(), { data: 'stream fd' });
    peer.send({ op: 'exit' });
    await peer.exited;
    server.close();

    // 4 MiB in one send: the kernel takes it in parts, the descriptor goes with the first byte only.
    const [a, b] = socketpair({ type: 'stream', fds: true });
    let bytes = 0;
    let fdsSeen = 0;
    const big = 4 * 1024 * 1024;
    const all = new Promise<void>((resolve) =>
      b.on('message', (d: Buffer, info) => {
        bytes += d.length;
        fdsSeen += info.fds.length;
        if (bytes === big) resolve();
      }),
    );
    await a.send(Buffer.alloc(big, 7), { fds: [0] });
    await all;
    assert.equal(fdsSeen, 1);
    a.close();
    b.close();
  });

  test('descriptors sent to a plain net stream socket are discarded by the kernel, not leaked', T, async () => {
    const p = sockPath('plainfd');
    const server = await unix.listen(p);
    // Wait for all 20 bytes before closing the sender: each message carrying fds ends a read() early, and
    // libuv takes a short read plus hang-up for end-of-file (see docs/sockets.md), which would cut the data.
    let accepted!: (c: import('node:net').Socket) => void;
    const isAccepted = new Promise<import('node:net').Socket>((resolve) => (accepted = resolve));
    const got = new Promise<string>((resolve) =>
      server.once('connection', (c) => {
        accepted(c);
        let text = '';
        c.on('data', (d) => {
          text += d;
          if (text.length === 20) resolve(text);
        });
      }),
    );
    const client = await unix.connect(p, { fds: true });
    const conn = await isAccepted;
    const before = openFds();
    for (let i = 0; i < 20; i++) await client.send('x', { fds: [0, 1, 2] });
    assert.equal(await got, 'x'.repeat(20));
    assert.equal(openFds(), before, 'no received descriptor was installed');
    client.close();
    conn.destroy();
    await once(conn, 'close');
    server.close();
  });

  test('received descriptors are closed when nobody takes them', T, async () => {
    const [a, b] = socketpair({ type: 'seqpacket' });
    const [c, d] = socketpair({ type: 'dgram' });
    const before = openFds();
    let seen = 0;
    const all = new Promise<void>((resolve) =>
      b.on('message', (_data: Buffer, info) => {
        assert.equal(info.fds.length, 3);
        if (++seen === 50) resolve();
      }),
    );
    for (let i = 0; i < 50; i++) await a.send(`m${i}`, { fds: [0, 1, 2] });
    await all;
    // And with no 'message' listener at all, over a datagram pair.
    let ignored = 0;
    d.on('close', () => {});
    for (let i = 0; i < 20; i++) await c.send('x', { fds: [0, 1] });
    await new Promise<void>((resolve) => {
      const tick = () => (d.listenerCount('message') === 0 && ++ignored > 20 ? resolve() : setImmediate(tick));
      setImmediate(tick);
    });
    assert.equal(openFds(), before);
    for (const s of [a, b, c, d]) s.close();
  });

  test('fds over a datagram socket with an explicit destination, and misuse', T, async () => {
    const p = sockPath('dgfd');
    const server = await unix.listen(p, { type: 'dgram' });
    const sender = unix.dgram();
    using region = shm.anonymous(4096);
    region.write('dg', 0);
    // Descriptors must be taken inside the listener: after it returns they are closed.
    const got = new Promise<number>((resolve) => server.once('message', (_d: Buffer, info) => resolve(info.takeFds()[0])));
    const client = await unix.connect(p, { type: 'dgram' });
    await client.send('with fd', { fds: [region.fd] });
    const fd = await got;
    using mapped = shm.fromFd(fd, { closeFd: true });
    assert.equal(mapped.read(0, 2).toString(), 'dg');
    assert.throws(() => client.send('x', { fds: [-1] }), { code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
    assert.throws(() => client.send('x', { fds: new Array(254).fill(0) }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    await assert.rejects(sender.send('x', { to: join(dir, 'nobody.sock') }), { code: 'ENOENT' });
    sender.close();
    client.close();
    server.close();
    assert.throws(() => client.send('x'), { code: 'ERR_IPCKIT_CLOSED' });
  });
});
