// Channel types: Channel<Send, Receive> (a client Channel<Request, Reply>, its
// server Channel<Reply, Request>), typed request/reply and events, and
// codec 'raw' typed as ArrayBufferView in, Buffer out. Two parts. What must
// and must not compile: `tsc -p test` builds this file, so a type regression
// breaks the build (the functions of that part never run). And what the
// types claim, checked at run time over every transport.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import {
  channel,
  type Channel,
  type ChannelServer,
  type Codec,
  type ForkedChannel,
  type LoanedView,
  type RawChannel,
  type RequestHandler,
  type ZeroCopyChannel,
} from 'ipckit';
import { ONE_WAY, T, TRANSPORTS, listenExtras, pair, servers, urlFor, type Transport } from './channel-pair.js';
import { extractBlocks } from '../doc-blocks.js';

/** true when A and B are the same type, not merely assignable one way. */
type Same<A, B> = (<X>() => X extends A ? 1 : 2) extends <X>() => X extends B ? 1 : 2 ? true : false;
function same<A, B>(_: Same<A, B>): void {}

// A small RPC protocol: two requests, each with its own reply type.
type Req = { op: 'add'; a: number; b: number } | { op: 'greet'; name: string };
type Res = number | string;

// ---- compile-time part (never called) ----

export async function rawChannels(url: string): Promise<void> {
  const raw = await channel.connect(url, { codec: 'raw' });
  same<typeof raw, Channel<ArrayBufferView, Buffer>>(true);
  same<typeof raw, RawChannel>(true);
  await raw.send(Buffer.from('bytes'));
  await raw.send(new Uint8Array(4));
  await raw.send(new Float64Array([1.5]));
  await raw.send(new DataView(new ArrayBuffer(8)));
  await raw.sendBatch([Buffer.alloc(1), new Uint16Array(2)]);
  // @ts-expect-error a raw channel sends bytes, not strings
  await raw.send('text');
  // @ts-expect-error nor objects
  await raw.send({ n: 1 });
  // @ts-expect-error nor numbers in a batch
  await raw.sendBatch([Buffer.alloc(1), 2]);
  for await (const m of raw) same<typeof m, Buffer>(true);
  const r = await raw.next();
  if (!r.done) same<typeof r.value, Buffer>(true);
  same<Awaited<ReturnType<typeof raw.receiveBatch>>, Buffer[]>(true);
  same<ReturnType<typeof raw.nextSync>, IteratorResult<Buffer>>(true);
  same<Awaited<ReturnType<typeof raw.request>>, Buffer>(true);
  raw.onRequest((request) => Buffer.concat([request, request]));
  // @ts-expect-error a raw reply is bytes
  raw.onRequest(() => 'text');
  raw.on('message', (m) => m.readUInt8(0)); // a Buffer method
  // @ts-expect-error a plain raw message is no zero-copy view
  raw.on('message', (m) => m.release());
  // @ts-expect-error messages are Buffers, not strings
  raw.on('message', (m: string) => m);

  // The codec decides the types only as a literal: explicit type arguments, as before, win.
  same<Awaited<ReturnType<typeof channel.connect<Uint8Array>>>, Channel<Uint8Array>>(true);
  const explicit = await channel.connect<Uint8Array>(url, { codec: 'raw' });
  same<typeof explicit, Channel<Uint8Array, Uint8Array>>(true);
  const json = await channel.connect(url, { codec: 'json' });
  same<typeof json, Channel<unknown, unknown>>(true);
  const untyped = await channel.connect(url);
  same<typeof untyped, Channel<unknown>>(true);

  // zeroCopy: views into the ring on shm:, Buffers otherwise: the type says both.
  const zc = await channel.connect(url, { codec: 'raw', zeroCopy: true });
  same<typeof zc, ZeroCopyChannel>(true);
  same<typeof zc, Channel<ArrayBufferView, Buffer | LoanedView>>(true);
  const maybe = await channel.connect(url, { codec: 'raw', zeroCopy: Math.random() > 0.5 });
  same<typeof maybe, ZeroCopyChannel>(true);
  same<typeof zc, typeof maybe>(true);
  for await (const m of zc) {
    // @ts-expect-error it may be a Buffer (empty message, other transport): narrow first
    m.release();
    if ('release' in m) m.release();
    else same<typeof m, Buffer>(true);
  }
  // @ts-expect-error a zero-copy channel's messages are not all Buffers
  const notRaw: RawChannel = zc;
  const ok: Channel<Uint8Array> = raw; // covariant in Receive: a Buffer is a Uint8Array
  void notRaw;
  void ok;
}

export async function rawServersForkParent(url: string, module: string): Promise<void> {
  const server = await channel.listen(url, { codec: 'raw' });
  same<typeof server, ChannelServer<ArrayBufferView, Buffer>>(true);
  for await (const ch of server) same<typeof ch, RawChannel>(true);
  server.on('connection', (ch) => same<typeof ch, RawChannel>(true));
  server.once('refused', (peer) => peer.uid + peer.gid + peer.pid);
  server.on('error', (e) => e.message);
  // @ts-expect-error the connection is a raw channel, not one of strings
  server.on('connection', (ch: Channel<string>) => ch);
  // @ts-expect-error 'refused' gives the peer's credentials
  server.on('refused', (peer: string) => peer);
  // What used to be written, a Channel<Uint8Array> from a raw server, still compiles.
  const accepted = new Promise<Channel<Uint8Array>>((resolve) => server.once('connection', resolve));
  void accepted;
  const zcServer = await channel.listen(url, { codec: 'raw', zeroCopy: true });
  same<typeof zcServer, ChannelServer<ArrayBufferView, Buffer | LoanedView>>(true);

  const forked = await channel.fork(module, [], { codec: 'raw' });
  same<typeof forked, ForkedChannel<ArrayBufferView, Buffer>>(true);
  same<typeof forked.channel, RawChannel>(true);
  const forkedPipe = await channel.fork(module, undefined, { codec: 'raw', transport: 'pipe', zeroCopy: true });
  same<typeof forkedPipe.channel, ZeroCopyChannel>(true);
  const typedFork = await channel.fork<Req, Res>(module);
  same<typeof typedFork.channel, Channel<Req, Res>>(true);
  same<Awaited<ReturnType<typeof channel.parent<Res, Req>>>, Channel<Res, Req>>(true);
  const rawParent = await channel.parent({ codec: 'raw' });
  same<typeof rawParent, RawChannel>(true);
  const fromParent = await channel.parent<Res, Req>();
  fromParent.onRequest((req) => (req.op === 'add' ? req.a + req.b : `hello ${req.name}`));
}

export async function typedRpc(url: string): Promise<void> {
  // The client sends Req and receives Res; its server the other way round.
  const client = await channel.connect<Req, Res>(url, { codec: 'json' });
  const sum = await client.request({ op: 'add', a: 1, b: 2 });
  same<typeof sum, Res>(true);
  const n = await client.request<number>({ op: 'add', a: 1, b: 2 }); // the caller's word for which reply
  same<typeof n, number>(true);
  // @ts-expect-error R must be one of the replies
  await client.request<boolean>({ op: 'add', a: 1, b: 2 });
  // @ts-expect-error not a request of the protocol
  await client.request({ op: 'sub', a: 1, b: 2 });
  // @ts-expect-error the reply is number | string (R is never inferred from where the reply goes)
  const wrong: number = await client.request({ op: 'add', a: 1, b: 2 });
  void wrong;
  // @ts-expect-error the client sends requests, not replies
  await client.send(42);
  client.on('message', (m) => same<typeof m, Res>(true));

  const server = await channel.listen<Res, Req>(url, { codec: 'json' });
  for await (const ch of server) {
    same<typeof ch, Channel<Res, Req>>(true);
    ch.onRequest((req) => (req.op === 'add' ? req.a + req.b : `hello ${req.name}`));
    ch.onRequest(async (req) => (req.op === 'add' ? req.a + req.b : req.name.length));
    // @ts-expect-error a reply must be a Res
    ch.onRequest(() => ({ not: 'a reply' }));
    // @ts-expect-error the request is a Req, not a string
    ch.onRequest((req: string) => req);
    for await (const m of ch) same<typeof m, Req>(true);
  }
  // A handler written on its own, as RequestHandler<Request, Reply>.
  const handler: RequestHandler<Req, Res> = (req) => (req.op === 'add' ? req.a + req.b : req.name);
  const one: RequestHandler<number> = (x) => x + 1; // one type for both, as before
  void handler;
  void one;
}

export async function customCodecsAndEvents(url: string): Promise<void> {
  const dates: Codec<Date> = { name: 'dates', encode: (d) => Buffer.from(d.toISOString()), decode: (b) => new Date(Buffer.from(b).toString()) };
  const ch = await channel.connect(url, { codec: dates });
  same<typeof ch, Channel<Date, Date>>(true);
  // @ts-expect-error this codec encodes Dates
  await ch.send('2026-01-01');
  // A codec whose decoded type differs from what it encodes types Receive by its decode.
  const lengths: Codec<string, number> = { name: 'lengths', encode: (s) => Buffer.from(s), decode: (b) => b.byteLength };
  const asym = await channel.connect(url, { codec: lengths });
  same<typeof asym, Channel<string, number>>(true);

  ch.on('close', (info) => same<typeof info.reason, 'closed' | 'peer-closed' | 'peer-lost' | 'error'>(true));
  ch.once('error', (e) => same<typeof e, Error>(true));
  ch.prependListener('message', (m) => same<typeof m, Date>(true));
  ch.prependOnceListener('message', (m) => same<typeof m, Date>(true));
  ch.addListener('message', (m) => same<typeof m, Date>(true));
  const listener = (m: Date) => m;
  ch.on('message', listener).off('message', listener).removeListener('message', listener);
  // @ts-expect-error 'close' gives { reason, error? }
  ch.on('close', (info: number) => info);
  // @ts-expect-error 'error' gives an Error
  ch.on('error', (e: string) => e);
  // @ts-expect-error a Date channel's messages are Dates
  ch.once('message', (m: string) => m);
  // Other event names stay open (EventEmitter's own, or a name only known at run time).
  ch.on('newListener', (name: string) => name);
  ch.on(String(Math.random()), () => {});

  // Code written for Channel<T> compiles as before.
  const old: Channel<number> = await channel.connect<number>(url);
  same<typeof old, Channel<number, number>>(true);
  const anyChannel: Channel<unknown> = old;
  const anyServer: ChannelServer<unknown> = await channel.listen<Buffer>(url, { codec: 'raw' });
  void anyChannel;
  void anyServer;
}

// ---- run-time part ----

/** Channels of this file, closed in teardown if a failed assertion left them open. */
const opened = new Set<Channel<any, any>>();
after(async () => {
  for (const ch of opened) await ch.close();
});
function track<C extends Channel<any, any>>(ch: C): C {
  opened.add(ch);
  ch.once('close', () => opened.delete(ch));
  return ch;
}

/** One of each kind of bytes a raw channel takes, and the bytes each is. */
function samples(): Array<{ what: string; value: ArrayBufferView; bytes: Buffer }> {
  const view = new DataView(new ArrayBuffer(6));
  view.setUint16(0, 0xbeef);
  view.setUint32(2, 0xcafe0001);
  const floats = new Float64Array([1.5, -2.25]);
  return [
    { what: 'a Buffer', value: Buffer.from('buffer'), bytes: Buffer.from('buffer') },
    { what: 'a Uint8Array', value: new Uint8Array([1, 2, 3]), bytes: Buffer.from([1, 2, 3]) },
    { what: 'a Float64Array', value: floats, bytes: Buffer.from(floats.buffer) },
    { what: 'a DataView', value: view, bytes: Buffer.from(view.buffer) },
    { what: 'an empty Buffer', value: Buffer.alloc(0), bytes: Buffer.alloc(0) },
    // Past 2 KiB, shm: copies a frame out on its own (memcpy) instead of a run of small frames.
    { what: '3000 bytes', value: Buffer.alloc(3000, 7), bytes: Buffer.alloc(3000, 7) },
  ];
}

function isBufferOf(m: unknown, bytes: Buffer, what: string): void {
  assert.ok(Buffer.isBuffer(m), `${what} arrived as ${Object.prototype.toString.call(m)}, not a Buffer`);
  assert.ok(m.equals(bytes), `${what}: other bytes arrived`);
}

/** A listener and its connector over `t`, both in this process, with the options' types from the same literal. */
async function rawPair(t: Exclude<Transport, 'pipe'>) {
  const spin = t === 'shm-nospin' ? { spin: false as const } : {};
  const server = await channel.listen(urlFor(t), { codec: 'raw', ...spin, ...listenExtras(t) });
  servers.add(server);
  const accepted = server[Symbol.asyncIterator]().next();
  const connector = track(await channel.connect(server.url, { codec: 'raw', ...spin }));
  const listener = track((await accepted).value as RawChannel);
  const done = async () => {
    await connector.close();
    await listener.close();
    await server.close();
    servers.delete(server);
  };
  return { connector, listener, done };
}

for (const t of TRANSPORTS) {
  test(`${t}: codec 'raw' takes any ArrayBufferView and delivers every message as a Buffer, through next(), receiveBatch(), 'message' and request()`, T, async () => {
    const sent = samples();
    if (t === 'pipe') {
      // The far end is a forked peer that echoes what it gets.
      const { ch, peer, done } = await pair('pipe', { codec: 'raw' });
      const raw: RawChannel = ch;
      peer.send({ op: 'echo' });
      await peer.next();
      for (const s of sent) await raw.send(s.value);
      for (const s of sent) {
        const r = await raw.next();
        assert.equal(r.done, false);
        isBufferOf(r.value, s.bytes, s.what);
      }
      await done();
      return;
    }
    const { connector, listener, done } = await rawPair(t);
    // fifo: is one-way: only the connector sends.
    const ends: Array<[RawChannel, RawChannel]> = t === 'fifo' ? [[connector, listener]] : [[connector, listener], [listener, connector]];
    for (const [from, to] of ends) {
      for (const s of sent) await from.send(s.value);
      const first = await to.next();
      assert.equal(first.done, false);
      isBufferOf(first.value, sent[0]!.bytes, sent[0]!.what);
      const rest: Buffer[] = [];
      while (rest.length < sent.length - 2) {
        const batch = await to.receiveBatch(sent.length - 2 - rest.length);
        assert.notEqual(batch.length, 0, `the channel ended after ${rest.length + 1} messages`);
        rest.push(...batch);
      }
      rest.forEach((m, i) => isBufferOf(m, sent[i + 1]!.bytes, sent[i + 1]!.what));
      const last = new Promise<Buffer>((resolve) => to.once('message', resolve));
      isBufferOf(await last, sent.at(-1)!.bytes, sent.at(-1)!.what);
    }
    if (t !== 'fifo') {
      listener.onRequest((request) => {
        isBufferOf(request, Buffer.from('ping'), 'a request');
        return new Uint16Array([0x6f70, 0x676e]); // any bytes back
      });
      const reply = await connector.request(Buffer.from('ping'));
      isBufferOf(reply, Buffer.from(new Uint16Array([0x6f70, 0x676e]).buffer), 'a reply');
    }
    await done();
  });
}

test('shm: with zeroCopy, a message is a view into the ring to release(), and an empty one a Buffer, as ZeroCopyChannel says', T, async () => {
  const server = await channel.listen(urlFor('shm'), { codec: 'raw' });
  servers.add(server);
  const accepted = server[Symbol.asyncIterator]().next();
  const rx = track(await channel.connect(server.url, { codec: 'raw', zeroCopy: true }));
  const tx = track((await accepted).value as RawChannel);
  await tx.sendBatch([Buffer.from('in the ring'), Buffer.alloc(0)]);
  const view = (await rx.next()).value as Buffer | LoanedView;
  assert.ok('release' in view, 'a non-empty message arrives as a view with release()');
  assert.ok(!Buffer.isBuffer(view));
  assert.equal(Buffer.from(view).toString(), 'in the ring');
  view.release();
  const empty = (await rx.next()).value as Buffer | LoanedView;
  assert.ok(!('release' in empty) && Buffer.isBuffer(empty) && empty.length === 0, 'an empty message arrives as a Buffer');
  await rx.close();
  await tx.close();
  await server.close();
  servers.delete(server);
});

for (const t of TRANSPORTS) {
  test(`${t}: a typed request/reply round trip: the client is Channel<Req, Res>, its server Channel<Res, Req>`, T, async (tc) => {
    if (t === 'fifo') return tc.skip(ONE_WAY);
    if (t === 'pipe') {
      // The forked peer answers { n } with { re: n, pid }.
      const { ch, done } = await pair('pipe', { codec: 'json' });
      const client: Channel<{ n: number }, { re: number; pid: number }> = ch;
      const reply = await client.request({ n: 7 });
      assert.equal(reply.re, 7);
      assert.notEqual(reply.pid, process.pid);
      await done();
      return;
    }
    const spin = t === 'shm-nospin' ? { spin: false as const } : {};
    const server = await channel.listen<Res, Req>(urlFor(t), { codec: 'json', ...spin, ...listenExtras(t) });
    servers.add(server);
    const connection = new Promise<Channel<Res, Req>>((resolve) => server.once('connection', resolve));
    const client = track(await channel.connect<Req, Res>(server.url, { codec: 'json', ...spin }));
    const serving = track(await connection);
    serving.onRequest((req) => (req.op === 'add' ? req.a + req.b : `hello ${req.name}`));
    const sum = await client.request<number>({ op: 'add', a: 40, b: 2 });
    const greeting = await client.request<string>({ op: 'greet', name: 'types' });
    assert.equal(sum + 1, 43);
    assert.equal(greeting.toUpperCase(), 'HELLO TYPES');
    // Plain messages follow the same types: Req one way, Res the other.
    const got = new Promise<Req>((resolve) => serving.once('message', resolve));
    await client.send({ op: 'greet', name: 'message' });
    assert.deepEqual(await got, { op: 'greet', name: 'message' });
    await serving.send(5);
    assert.deepEqual(await client.next(), { value: 5, done: false });
    await client.close();
    await serving.close();
    await server.close();
    servers.delete(server);
  });
}

// The docs test runs the example of docs/channels.md "Types" without checking
// its types (it only strips them): check them here, where they are the point.
test('docs/channels.md "Types": its example compiles as written, and the request it says would not compile does not', T, () => {
  const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
  const markdown = readFileSync(join(root, 'docs', 'channels.md'), 'utf8');
  const section = markdown.split('\n').indexOf('## Types') + 1;
  assert.ok(section > 0, 'docs/channels.md has a "## Types" section');
  const block = extractBlocks('docs/channels.md', markdown).find((b) => b.line > section && b.language === 'ts');
  assert.ok(block, 'the "Types" section has a ts example');
  const refused = /^\/\/ (.*) would not compile/m.exec(block.code);
  assert.ok(refused, 'the example names a call that would not compile');

  // A program of the example alone, inside this package so that 'ipckit' resolves to this checkout (dist/).
  const file = join(root, 'dist-test', 'channel-types-docs-example.ts');
  const { config } = ts.readConfigFile(join(root, 'tsconfig.json'), ts.sys.readFile);
  const options = { ...ts.convertCompilerOptionsFromJson(config.compilerOptions, root).options, noEmit: true, declaration: false, rootDir: root };
  let program: ts.Program | undefined;
  const diagnostics = (code: string): string[] => {
    const host = ts.createCompilerHost(options);
    const { getSourceFile, fileExists, readFile } = host;
    host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, code, language) : getSourceFile.call(host, name, language, ...rest));
    host.fileExists = (name) => name === file || fileExists.call(host, name);
    host.readFile = (name) => (name === file ? code : readFile.call(host, name));
    program = ts.createProgram([file], options, host, program);
    return ts.getPreEmitDiagnostics(program).map((d) => `${d.file?.fileName === file ? `line ${block.line + 1 + d.file.getLineAndCharacterOfPosition(d.start!).line}: ` : ''}${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`);
  };
  assert.deepEqual(diagnostics(block.code), []);
  const withRefused = block.code.replace(refused[0], `${refused[1]};`);
  assert.match(diagnostics(withRefused).join('\n'), /'"sub"' is not assignable/);
});
