// `ipckit send` / `ipckit recv` as real processes: --retry against a listener
// that comes later, clean-up and exit status on SIGINT/SIGTERM, and --raw
// with socat on the other end.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { channel, mq, type Channel } from 'ipckit';
import { has, uniqueKey } from '../helpers.js';
import { runCli, startCli } from './cli-run.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-cli-send-'));
after(() => rmSync(dir, { recursive: true, force: true }));
const tag = () => `cli-send-${process.pid}-${randomBytes(4).toString('hex')}`;
const LISTENING = /^ipckit: listening on (\S+) \(pid \d+\)$/;

describe('ipckit send --retry', () => {
  test('a send started before its listener waits for it and delivers', T, async () => {
    const url = `shm:${tag()}`;
    const send = startCli(['send', '--retry', url, 'hello']);
    // The sender has tried and found nobody: only now does the listener start.
    assert.match(await send.stderrLine(/nobody listens/), new RegExp(`^ipckit: nobody listens on ${url} yet \\(ECONNREFUSED\\); retrying for up to 10000 ms$`));
    const recv = await runCli(['recv', url, '--count', '1']);
    assert.equal(recv.code, 0, recv.stderr);
    assert.equal(recv.stdout.toString(), 'hello\n');
    const sent = await send.done;
    assert.equal(sent.code, 0, sent.stderr);
  });

  test('--retry MS gives up after MS with the connect error; a unix: path that does not exist yet is ENOENT', T, async () => {
    const url = `unix:${join(dir, 'never.sock')}`;
    const started = performance.now();
    const r = await runCli(['send', '--retry', '300', url, 'x']);
    const ms = performance.now() - started;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ipckit: nobody listens on unix:\S+ yet \(ENOENT\); retrying for up to 300 ms\nipckit: ENOENT: .*connect 'unix:/);
    assert.ok(ms >= 300, `gave up after ${ms} ms`);
  });

  test('--retry is for the connecting end', T, async () => {
    const r = await runCli(['recv', '--retry', `shm:${tag()}`]);
    assert.equal(r.code, 2);
    assert.match(r.stderr, /^ipckit: --retry is for the connecting end/);
  });
});

describe('ipckit send/recv on SIGINT and SIGTERM', () => {
  const cases: Array<{ what: string; args: (p: string) => string[]; file: string; signal: NodeJS.Signals; status: number; isFifo?: boolean }> = [
    { what: 'recv unix: (listening)', args: (p) => ['recv', `unix:${p}`], file: 'recv.sock', signal: 'SIGINT', status: 130 },
    { what: 'send --listen unix: (waiting for a peer)', args: (p) => ['send', '--listen', `unix:${p}`, 'x'], file: 'send.sock', signal: 'SIGTERM', status: 143 },
    { what: 'recv fifo: (waiting for a writer)', args: (p) => ['recv', `fifo:${p}`], file: 'recv.fifo', signal: 'SIGTERM', status: 143, isFifo: true },
    { what: 'recv --raw unix:', args: (p) => ['recv', '--raw', `unix:${p}`], file: 'raw.sock', signal: 'SIGINT', status: 130 },
    { what: 'recv --raw fifo:', args: (p) => ['recv', '--raw', `fifo:${p}`], file: 'raw.fifo', signal: 'SIGINT', status: 130, isFifo: true },
  ];
  for (const c of cases) {
    test(`${c.what}: ${c.signal} removes what it made and exits ${c.status}`, T, async () => {
      const path = join(dir, c.file);
      const cli = startCli(c.args(path));
      await cli.stderrLine(LISTENING);
      const st = statSync(path);
      assert.ok(c.isFifo ? st.isFIFO() : st.isSocket(), 'made while running');
      cli.child.kill(c.signal);
      const r = await cli.done;
      assert.equal(r.code, c.status, r.stderr);
      assert.equal(existsSync(path), false, `${path} removed`);
      assert.doesNotMatch(r.stderr, /ipckit: (?!listening)/, 'nothing reported as an error');
    });
  }

  test('a connected recv --connect mq: closes its channel on SIGINT (the peer sees a close, not a loss) and leaves no queue', T, async () => {
    const server = await channel.listen<Buffer>(`mq:/${tag()}`, { codec: 'raw' });
    try {
      const cli = startCli(['recv', '--connect', server.url]);
      const ch = (await server[Symbol.asyncIterator]().next()).value as Channel<Buffer>;
      await ch.send(Buffer.from('one'));
      const closed = new Promise<string>((resolve) => ch.once('close', (info: { reason: string }) => resolve(info.reason)));
      // Once the message is printed, recv is in its loop.
      await new Promise<void>((resolve) => cli.child.stdout!.once('data', () => resolve()));
      cli.child.kill('SIGINT');
      const r = await cli.done;
      assert.equal(r.code, 130, r.stderr);
      assert.equal(r.stdout.toString(), 'one\n');
      assert.equal(await closed, 'peer-closed');
      assert.deepEqual(readdirSync('/dev/mqueue').filter((n) => n.includes(`-${cli.child.pid}-`)), []);
    } finally {
      await server.close();
    }
  });

  test('send --request over sysvmq: killed while waiting for the reply removes both queues (SIGTERM → 143)', T, async () => {
    const server = await channel.listen<Buffer>(`sysvmq:0x${uniqueKey().toString(16)}`, { codec: 'raw' });
    try {
      const cli = startCli(['send', '--request', server.url, 'question']);
      const ch = (await server[Symbol.asyncIterator]().next()).value as Channel<Buffer>;
      const closed = new Promise<string>((resolve) => ch.once('close', (info: { reason: string }) => resolve(info.reason)));
      // The request arrives and is never answered.
      await new Promise<void>((resolve) =>
        ch.onRequest(() => {
          resolve();
          return new Promise<Buffer>(() => {});
        }),
      );
      cli.child.kill('SIGTERM');
      const r = await cli.done;
      assert.equal(r.code, 143, r.stderr);
      assert.equal(await closed, 'peer-closed');
      // The request went out on a queue the sender made: none it used is left.
      assert.deepEqual(mq.sysv.list().filter((q) => q.lspid === cli.child.pid || q.lrpid === cli.child.pid), []);
    } finally {
      await server.close();
    }
  });
});

describe('ipckit send/recv --raw with socat', { skip: !has('socat') && 'socat not installed' }, () => {
  test('socat UNIX-CONNECT → ipckit recv --raw unix: (bytes as they are, then the file is gone)', T, async () => {
    const path = join(dir, 'from-socat.sock');
    const recv = startCli(['recv', '--raw', `unix:${path}`]);
    await recv.stderrLine(LISTENING);
    const bytes = Buffer.concat([Buffer.from('plain bytes\n'), randomBytes(4096), Buffer.from([0, 0xff, 0x0a])]);
    const socat = await runCli(['-u', '-', `UNIX-CONNECT:${path}`], { command: 'socat', input: bytes });
    assert.equal(socat.code, 0, socat.stderr);
    const r = await recv.done;
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout, bytes, 'no framing, no hello, no added newline');
    assert.equal(existsSync(path), false);
  });

  test('ipckit send --raw unix: → socat UNIX-LISTEN, from an argument and streamed from stdin', T, async () => {
    for (const [args, input, expected] of [
      [['hello socat'], '', 'hello socat'],
      [[], 'line 1\nline 2\n', 'line 1\nline 2\n'],
    ] as Array<[string[], string, string]>) {
      const path = join(dir, `to-socat-${args.length}.sock`);
      // -d -d: socat says when it listens.
      const socat = startCli(['-d', '-d', '-u', `UNIX-LISTEN:${path}`, '-'], { command: 'socat' });
      await socat.stderrLine(/listening on/);
      const sent = await runCli(['send', '--raw', `unix:${path}`, ...args], { input });
      assert.equal(sent.code, 0, sent.stderr);
      assert.equal(sent.stderr, '');
      const r = await socat.done;
      assert.equal(r.code, 0, r.stderr);
      assert.equal(r.stdout.toString(), expected);
      rmSync(path, { force: true });
    }
  });

  test('tcp://127.0.0.1:0: recv --raw says which port it got; socat connects to it', T, async () => {
    const recv = startCli(['recv', '--raw', 'tcp://127.0.0.1:0']);
    const url = LISTENING.exec(await recv.stderrLine(LISTENING))![1]!;
    const port = /:(\d+)$/.exec(url)![1]!;
    assert.notEqual(port, '0');
    const socat = await runCli(['-u', '-', `TCP:127.0.0.1:${port}`], { command: 'socat', input: 'over tcp' });
    assert.equal(socat.code, 0, socat.stderr);
    const r = await recv.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'over tcp');
  });

  test('--raw where there are only messages, and flags that mean nothing raw, are usage errors', T, async () => {
    for (const [args, message] of [
      [['send', '--raw', `shm:${tag()}`, 'x'], /--raw speaks plain bytes on byte streams/],
      [['recv', '--raw', '--count', '1', `unix:${join(dir, 'x.sock')}`], /--raw has no messages to count/],
      [['send', '--raw', '--request', `unix:${join(dir, 'x.sock')}`, 'x'], /--request does not apply/],
    ] as Array<[string[], RegExp]>) {
      const r = await runCli(args);
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, message);
    }
  });
});

describe('ipckit send/recv over a FIFO', () => {
  test('recv --raw fifo: makes the FIFO, prints what a writer sends, and removes it', T, async () => {
    const path = join(dir, 'plain.fifo');
    const recv = startCli(['recv', '--raw', `fifo:${path}`]);
    await recv.stderrLine(LISTENING);
    const sent = await runCli(['send', '--raw', `fifo:${path}`], { input: 'through a fifo\n' });
    assert.equal(sent.code, 0, sent.stderr);
    const r = await recv.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.toString(), 'through a fifo\n');
    assert.equal(existsSync(path), false);
  });

  test('fifo: is one-way: send --listen and recv --connect are usage errors', T, async () => {
    const path = join(dir, 'oneway.fifo');
    for (const args of [['send', '--listen', `fifo:${path}`, 'x'], ['recv', '--connect', `fifo:${path}`]]) {
      const r = await runCli(args);
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /^ipckit: fifo: is one-way/);
    }
    assert.equal(existsSync(path), false, 'nothing made');
  });
});
