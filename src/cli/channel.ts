// `ipckit send <url> [data]` and `ipckit recv <url> [--count N]`: socat-like
// ends of a channel (docs/channels.md), to talk to a Node program that uses
// the library or to pipe data between shells.
//   ipckit recv shm:jobs --count 3            listen, print 3 messages, exit
//   echo hi | ipckit send shm:jobs            connect, send stdin as one message
//   ipckit send unix:/tmp/s.sock '{"a":1}' --codec json --request   print the reply
//   ipckit send --retry shm:jobs hi           wait for the listener to come up
//   socat - UNIX-CONNECT:/tmp/s <<<hi & ipckit recv --raw unix:/tmp/s   plain bytes
// Whatever they made (a listener's socket file or FIFO, a connection's
// queues) they remove again, also on Ctrl-C and SIGTERM (interrupt.ts).
import { InvalidArgumentError, type Command } from 'commander';
import { connect, listen, type Channel, type ChannelOptions, type ChannelServer } from '../channel/index.js';
import type { CodecName } from '../channel/codec.js';
import { parseUrl, type Endpoint } from '../channel/url.js';
import { readStdin, writeStdout } from './io.js';
import { integerOption, parseBytes, parseMs, msOption, UsageError } from './args.js';
import { cleanupOnSignal } from './interrupt.js';
import { RAW_SCHEMES, rawConnect, rawListen, rawReceive, rawSend } from './raw.js';

export const CODECS = ['raw', 'json', 'v8', 'msgpack'];
export const DEFAULT_RETRY_MS = 10_000;
/** Waits between connect attempts while the listener is not there yet. */
const RETRY_BACKOFF_MS = [10, 20, 50, 100, 200, 250];
/** What a connect says while nobody listens yet: no socket file or FIFO, or nobody accepting. */
const NOT_YET = ['ECONNREFUSED', 'ENOENT'];

interface CommonOptions {
  codec: string;
  listen?: boolean;
  connect?: boolean;
  maxSize?: number;
  raw?: boolean;
  /** ms; true when given without a value. */
  retry?: number | true;
}

/** `--retry`, `--retry 5000` or `--retry=` (withOptionalValuesSeparated) → ms. */
export const retryOption = (text: string): number => (text === '' ? DEFAULT_RETRY_MS : parseMs(text, 'retry'));
const retryMs = (o: CommonOptions): number => (o.retry === undefined ? 0 : o.retry === true ? DEFAULT_RETRY_MS : o.retry);

/** The URL, checked here so a bad one is a usage error. */
function endpoint(url: string, o: CommonOptions): Endpoint {
  let ep: Endpoint;
  try {
    ep = parseUrl(url);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (ep.scheme === 'pipe') throw new UsageError('a pipe: channel joins a Node program and the child it started; give another URL (shm:NAME, unix:/path, ...)');
  if (o.raw && !RAW_SCHEMES.includes(ep.scheme)) {
    throw new UsageError(`--raw speaks plain bytes on byte streams: unix:, unix-abstract:, tcp:// and fifo: (${ep.scheme}: carries messages)`);
  }
  return ep;
}

function checkEnds(o: CommonOptions, ep: Endpoint, listening: boolean, command: 'send' | 'recv'): void {
  if (o.listen && o.connect) throw new UsageError('--listen and --connect exclude each other');
  if (o.retry !== undefined && listening) throw new UsageError('--retry is for the connecting end (it waits for a listener)');
  // A FIFO is one-way: the end that made it (listening) reads, the other writes.
  if (ep.scheme === 'fifo' && listening !== (command === 'recv')) {
    throw new UsageError(`fifo: is one-way: recv listens and reads, send connects and writes (${command} ${listening ? '--listen' : '--connect'} cannot)`);
  }
}

function channelOptions(o: CommonOptions): ChannelOptions<unknown> {
  if (!CODECS.includes(o.codec)) throw new UsageError(`--codec must be one of ${CODECS.join(', ')}`);
  return { codec: o.codec as CodecName, ...(o.maxSize ? { maxMessageSize: o.maxSize } : {}) };
}

function announce(url: string): void {
  // Where to connect (tcp://host:0 got a port), and that it is time to: on stderr, as `signal wait` does.
  process.stderr.write(`ipckit: listening on ${url} (pid ${process.pid})\n`);
}

/** Calls `attempt` again while nobody listens yet at `url`, for up to `totalMs` in all (0: once). */
async function retrying<T>(url: string, totalMs: number, attempt: (leftMs: number | undefined) => Promise<T>): Promise<T> {
  const started = Date.now();
  for (let i = 0; ; i++) {
    const left = totalMs - (Date.now() - started);
    try {
      return await attempt(totalMs > 0 ? Math.max(left, 0) : undefined);
    } catch (e) {
      const waited = Date.now() - started;
      if (!NOT_YET.includes((e as { code?: string }).code ?? '') || waited >= totalMs) throw e;
      // Once, so a person (or a script) knows what the wait is for.
      if (i === 0) process.stderr.write(`ipckit: nobody listens on ${url} yet (${(e as { code: string }).code}); retrying for up to ${totalMs} ms\n`);
      await new Promise((resolve) => setTimeout(resolve, Math.min(RETRY_BACKOFF_MS[Math.min(i, RETRY_BACKOFF_MS.length - 1)]!, totalMs - waited)));
    }
  }
}

/** A channel that closes (and removes what it made) on Ctrl-C too; `done` closes it normally. */
function guarded(ch: Channel<unknown>): { ch: Channel<unknown>; done: () => Promise<void> } {
  const release = cleanupOnSignal(() => ch.close());
  return {
    ch,
    done: async () => {
      await ch.close();
      release();
    },
  };
}

/** Listens until the first peer connects; Ctrl-C meanwhile removes the listener's socket file or FIFO. */
async function firstPeer(url: string, o: CommonOptions): Promise<Channel<unknown>> {
  const server = await listen(url, channelOptions(o));
  const release = cleanupOnSignal(() => server.close());
  try {
    announce(server.url);
    const first = await server[Symbol.asyncIterator]().next();
    return first.value as Channel<unknown>;
  } finally {
    await server.close();
    release();
  }
}

/** The channel to use: the first peer that connects when listening, else a connection. */
async function open(url: string, o: CommonOptions, listening: boolean): Promise<{ ch: Channel<unknown>; done: () => Promise<void> }> {
  if (listening) return guarded(await firstPeer(url, o));
  const options = channelOptions(o);
  const ms = retryMs(o);
  const ep = parseUrl(url);
  return guarded(await retrying(url, ms, (left) => connect(url, { ...options, ...(ep.scheme === 'fifo' && left !== undefined ? { timeout: left } : {}) })));
}

function toMessage(data: Buffer, codec: string): unknown {
  if (codec === 'raw') return data;
  try {
    return JSON.parse(data.toString('utf8'));
  } catch {
    throw new UsageError(`with --codec ${codec} the data must be JSON`);
  }
}

function show(msg: unknown, codec: string, newline: boolean): Uint8Array | string {
  if (codec === 'raw') {
    const b = msg as Buffer;
    return newline ? Buffer.concat([b, Buffer.from('\n')]) : b;
  }
  const text = JSON.stringify(msg, (_k, v: unknown) => (typeof v === 'bigint' ? `${v}n` : v instanceof Map ? Object.fromEntries(v) : v instanceof Set ? [...v] : v));
  return `${text}\n`;
}

interface SendOptions extends CommonOptions {
  lines?: boolean;
  request?: boolean;
  timeout?: number;
}

async function sendRaw(url: string, ep: Endpoint, data: string | undefined, o: SendOptions, listening: boolean): Promise<void> {
  for (const flag of ['lines', 'request', 'timeout', 'maxSize'] as const) {
    if (o[flag] !== undefined) throw new UsageError(`--raw sends plain bytes: --${flag === 'maxSize' ? 'max-size' : flag} does not apply`);
  }
  const bytes = data === undefined ? undefined : Buffer.from(data);
  if (!listening) {
    await rawSend(await retrying(url, retryMs(o), (left) => rawConnect(ep, url, left)), bytes);
    return;
  }
  const server = await rawListen(ep, url);
  try {
    announce(server.url);
    const stream = await server.first;
    server.close();
    await rawSend(stream, bytes);
  } finally {
    server.close();
  }
}

async function send(url: string, data: string | undefined, o: SendOptions): Promise<void> {
  const listening = !!o.listen;
  const ep = endpoint(url, o);
  checkEnds(o, ep, listening, 'send');
  if (o.raw) return sendRaw(url, ep, data, o, listening);
  if (o.lines && data !== undefined) throw new UsageError('--lines reads stdin; do not pass data');
  if (o.timeout !== undefined && !o.request) throw new UsageError('--timeout is for --request (how long to wait for the reply)');
  channelOptions(o);
  // Read stdin first: a connection should not wait on a slow producer.
  const bytes = data !== undefined ? Buffer.from(data) : await readStdin('data');
  const messages = o.lines
    ? bytes
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((line) => toMessage(Buffer.from(line), o.codec))
    : [toMessage(bytes, o.codec)];
  const { ch, done } = await open(url, o, listening);
  try {
    if (o.request) {
      const reply = await ch.request(messages[0], o.timeout === undefined ? {} : { timeout: o.timeout });
      await writeStdout(show(reply, o.codec, true));
    } else {
      for (const msg of messages) await ch.send(msg);
    }
  } finally {
    await done();
  }
}

interface RecvOptions extends CommonOptions {
  count?: number;
  newline: boolean;
}

async function recvRaw(url: string, ep: Endpoint, o: RecvOptions, listening: boolean): Promise<void> {
  if (o.count !== undefined) throw new UsageError('--raw has no messages to count: it prints one peer\'s bytes until that peer closes');
  if (o.maxSize !== undefined) throw new UsageError('--raw receives plain bytes: --max-size does not apply');
  if (!listening) {
    await rawReceive(await retrying(url, retryMs(o), (left) => rawConnect(ep, url, left)));
    return;
  }
  const server = await rawListen(ep, url);
  try {
    announce(server.url);
    const stream = await server.first;
    // One peer, like `socat UNIX-LISTEN:...` without fork: later ones are refused.
    if (ep.scheme !== 'fifo') server.close();
    await rawReceive(stream);
  } finally {
    server.close();
  }
}

async function recv(url: string, o: RecvOptions): Promise<void> {
  const listening = !o.connect;
  const ep = endpoint(url, o);
  checkEnds(o, ep, listening, 'recv');
  if (o.raw) return recvRaw(url, ep, o, listening);
  const count = o.count ?? Infinity;
  const options = channelOptions(o);
  let n = 0;
  let failure: Error | undefined;
  /** Prints from one channel until it ends or the count is reached; true when the count is reached. */
  const drain = async (ch: Channel<unknown>): Promise<boolean> => {
    try {
      while (n < count) {
        const r = await ch.next();
        if (r.done) break;
        n++;
        await writeStdout(show(r.value, o.codec, o.newline));
      }
    } catch (e) {
      failure = e as Error;
    } finally {
      await ch.close();
    }
    return n >= count;
  };
  if (!listening) {
    const { ch, done } = guarded(await retrying(url, retryMs(o), () => connect(url, options)));
    await drain(ch);
    await done();
  } else if (count > 0) {
    // Listening: every peer that connects is read, concurrently, until --count messages in all.
    const server: ChannelServer<unknown> = await listen(url, options);
    const open = new Set<Channel<unknown>>();
    const release = cleanupOnSignal(() => Promise.all([server.close(), ...[...open].map((ch) => ch.close())]));
    announce(server.url);
    await new Promise<void>((resolve) => {
      server.on('connection', (ch: Channel<unknown>) => {
        open.add(ch);
        void drain(ch).then((reached) => {
          open.delete(ch);
          if (reached) resolve();
        });
      });
    });
    await server.close();
    await Promise.all([...open].map((ch) => ch.close()));
    release();
  }
  if (failure) throw failure;
}

const URL_HELP = 'channel URL: shm:NAME, unix:/path, unix-abstract:NAME, tcp://host:port, mq:/NAME, sysvmq:KEY, unix-seqpacket:/path, fifo:/path';
const maxSizeOption = (text: string): number => {
  const n = parseBytes(text, 'max-size');
  if (n < 1) throw new InvalidArgumentError('max-size must be at least 1 byte');
  return n;
};

export function register(program: Command): void {
  program
    .command('send')
    .description('send one message (the data argument, or all of stdin) to a channel URL; connects unless --listen')
    .argument('<url>', URL_HELP)
    .argument('[data]', 'the message; default: stdin')
    .option('--codec <codec>', `message codec (${CODECS.join(', ')}); json/v8/msgpack parse the data as JSON`, 'raw')
    .option('--lines', 'send each line of stdin as its own message')
    .option('--request', 'send as a request and print the reply')
    .option('--timeout <ms>', 'with --request: give up waiting for the reply after this many ms', msOption)
    .option('--retry [ms]', `keep trying to connect while nobody listens yet (ECONNREFUSED, ENOENT), with back-off, for up to this many ms (default ${DEFAULT_RETRY_MS})`, retryOption)
    .option('--raw', 'plain bytes, no message framing and no hello (unix:, unix-abstract:, tcp://, fifo:): socat, nc or any byte-stream program is the peer; stdin is streamed')
    .option('--listen', 'listen on the URL and send to the first peer that connects (default: connect)')
    .option('--max-size <bytes>', 'largest message, e.g. 64k', maxSizeOption)
    .action(send);

  program
    .command('recv')
    .description('print messages from a channel URL (listens by default and serves every peer; --connect to dial a listener)')
    .argument('<url>', URL_HELP)
    .option('--count <n>', 'exit after N messages (default: no limit when listening; until the peer closes with --connect)', integerOption('count', 0))
    .option('--codec <codec>', `message codec (${CODECS.join(', ')}); non-raw messages print as JSON lines`, 'raw')
    .option('--connect', 'connect to a listener instead of listening')
    .option('--listen', 'listen (the default)')
    .option('--retry [ms]', `with --connect: keep trying while nobody listens yet, for up to this many ms (default ${DEFAULT_RETRY_MS})`, retryOption)
    .option('--raw', 'plain bytes, no message framing and no hello (unix:, unix-abstract:, tcp://, fifo:): print one peer\'s bytes until it closes')
    .option('--no-newline', 'codec raw: do not add a newline after each message')
    .option('--max-size <bytes>', 'largest message, e.g. 64k', maxSizeOption)
    .action(recv);
}
