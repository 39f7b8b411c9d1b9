// `ipckit send <url> [data]` and `ipckit recv <url> [--count N]`: socat-like
// ends of a channel (docs/channels.md), to talk to a Node program that uses
// the library or to pipe data between shells.
//   ipckit recv shm:jobs --count 3            listen, print 3 messages, exit
//   echo hi | ipckit send shm:jobs            connect, send stdin as one message
//   ipckit send unix:/tmp/s.sock '{"a":1}' --codec json --request   print the reply
import type { Command } from 'commander';
import { connect, listen, type Channel, type ChannelOptions } from '../channel.js';
import type { CodecName } from '../channel/codec.js';
import { readStdin, writeStdout } from './io.js';
import { UsageError } from './args.js';

const CODECS = ['raw', 'json', 'v8', 'msgpack'];

interface CommonOptions {
  codec: string;
  listen?: boolean;
  connect?: boolean;
  maxSize?: string;
}

function channelOptions(o: CommonOptions): ChannelOptions<unknown> {
  if (!CODECS.includes(o.codec)) throw new UsageError(`--codec must be one of ${CODECS.join(', ')}`);
  const max = o.maxSize === undefined ? undefined : Number(o.maxSize);
  if (max !== undefined && (!Number.isSafeInteger(max) || max < 1)) throw new UsageError('--max-size must be a positive integer');
  return { codec: o.codec as CodecName, ...(max ? { maxMessageSize: max } : {}) };
}

/** The channel to use: the first peer that connects when listening, else a connection. */
async function open(url: string, o: CommonOptions, listenByDefault: boolean): Promise<{ ch: Channel<unknown>; done: () => Promise<void> }> {
  if (o.listen && o.connect) throw new UsageError('--listen and --connect exclude each other');
  const options = channelOptions(o);
  const doListen = o.listen ?? (o.connect ? false : listenByDefault);
  if (!doListen) {
    const ch = await connect(url, options);
    return { ch, done: () => ch.close() };
  }
  const server = await listen(url, options);
  const first = await server[Symbol.asyncIterator]().next();
  await server.close();
  const ch = first.value as Channel<unknown>;
  return { ch, done: () => ch.close() };
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

export function register(program: Command): void {
  program
    .command('send')
    .description('send one message (the data argument, or all of stdin) to a channel URL: shm:NAME, unix:/path, unix-abstract:NAME, tcp://host:port')
    .argument('<url>', 'channel URL')
    .argument('[data]', 'the message; default: stdin')
    .option('--codec <codec>', `message codec (${CODECS.join(', ')}); json/v8/msgpack parse the data as JSON`, 'raw')
    .option('--lines', 'send each line of stdin as its own message')
    .option('--request', 'send as a request and print the reply')
    .option('--timeout <ms>', 'with --request: give up after this many ms')
    .option('--listen', 'listen on the URL and send to the first peer that connects (default: connect)')
    .option('--max-size <bytes>', 'largest message')
    .action(async (url: string, data: string | undefined, o: CommonOptions & { lines?: boolean; request?: boolean; timeout?: string }) => {
      if (o.lines && data !== undefined) throw new UsageError('--lines reads stdin; do not pass data');
      const { ch, done } = await open(url, o, false);
      try {
        if (o.lines) {
          const text = (await readStdin('lines')).toString('utf8');
          for (const line of text.split('\n')) if (line !== '') await ch.send(toMessage(Buffer.from(line), o.codec));
        } else {
          const bytes = data !== undefined ? Buffer.from(data) : await readStdin('data');
          const msg = toMessage(bytes, o.codec);
          if (o.request) {
            const timeout = o.timeout === undefined ? undefined : Number(o.timeout);
            const reply = await ch.request(msg, timeout === undefined ? {} : { timeout });
            await writeStdout(show(reply, o.codec, true));
          } else await ch.send(msg);
        }
      } finally {
        await done();
      }
    });

  program
    .command('recv')
    .description('print messages from a channel URL (listens by default; --connect to dial a listener)')
    .argument('<url>', 'channel URL')
    .option('--count <n>', 'exit after N messages (default: until the peer closes)')
    .option('--codec <codec>', `message codec (${CODECS.join(', ')}); non-raw messages print as JSON lines`, 'raw')
    .option('--connect', 'connect to a listener instead of listening')
    .option('--listen', 'listen (the default)')
    .option('--no-newline', 'raw: do not add a newline after each message')
    .option('--max-size <bytes>', 'largest message')
    .action(async (url: string, o: CommonOptions & { count?: string; newline: boolean }) => {
      const count = o.count === undefined ? Infinity : Number(o.count);
      if (!(count >= 0) || (count !== Infinity && !Number.isSafeInteger(count))) throw new UsageError('--count must be a non-negative integer');
      if (o.listen && o.connect) throw new UsageError('--listen and --connect exclude each other');
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
      if (o.connect) {
        await drain(await connect(url, channelOptions(o)));
      } else if (count > 0) {
        // Listening: every peer that connects is read, concurrently, until --count messages in all.
        const server = await listen(url, channelOptions(o));
        const open = new Set<Channel<unknown>>();
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
      }
      if (failure) throw failure;
    });
}
