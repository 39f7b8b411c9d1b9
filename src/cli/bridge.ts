// `ipckit bridge <local-url> <remote-url>`: joins two channels, e.g. a local
// shm: or mq: one to a tcp:// or tls:// one on another host, and forwards
// messages both ways (and requests, whose replies come back the same way).
//   ipckit bridge --listen-local shm:jobs tcp://10.0.0.2:7000     apps on this host connect to shm:jobs
//   ipckit bridge --listen-remote mq:/jobs tcp://0.0.0.0:7000     a remote host connects to port 7000
// Each end is connected to, unless its --listen-* flag says listen (then the
// first peer that connects is the one bridged). Messages pass as bytes,
// never decoded: both apps must use the same codec, which --codec names
// (each hop's hello checks it). Backpressure holds end to end: a batch read
// from one side is sent to the other before the next is read, so a slow
// receiver stops the bridge reading, and its sender waits.
// Exit status: 0 when one side closed cleanly (the other is then closed after
// everything already read was passed on), 3 when one side was lost
// (peer-lost: killed, a cut network; the bridge then exits without a clean
// close, so the other side sees peer-lost too), 1 on any other failure.
import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { connect, listen, type Channel, type ConnectOptions, type ListenOptions } from '../channel/index.js';
import { copyBytes, raw, type Codec } from '../channel/codec.js';
import { parseUrl } from '../channel/url.js';
import { UsageError, integerOption } from './args.js';
import { CODECS, DEFAULT_RETRY_MS, retryOption } from './channel.js';
import { cleanupOnSignal } from './interrupt.js';

/** Exit status when one side of the bridge was lost (peer-lost). */
export const EXIT_PEER_LOST = 3;
/** How long a lost side's last messages may take to reach the other side before the bridge exits. */
const LOST_DRAIN_MS = 2000;
/** Messages read from one side per batch (bounded by --high-water-mark too). */
const BATCH = 256;

interface BridgeOptions {
  codec: string;
  listenLocal?: boolean;
  listenRemote?: boolean;
  retry?: number | true;
  highWaterMark?: number;
  tlsKey?: string;
  tlsCert?: string;
  tlsCa?: string;
}

/**
 * The codec the two apps use, by name, without decoding: the bytes of a
 * message pass through as they are (raw is raw itself).
 */
function passThrough(name: string): Codec<Uint8Array, Buffer> {
  if (name === 'raw') return raw as Codec<Uint8Array, Buffer>;
  return { name, encode: (bytes) => bytes, decode: copyBytes };
}

/** The options of one end: the codec, the flow bound, TLS files for a tls:// URL. */
function endOptions(url: string, o: BridgeOptions): ConnectOptions<Uint8Array, Buffer> & ListenOptions<Uint8Array, Buffer> {
  const scheme = parseUrl(url).scheme;
  const read = (file: string | undefined) => (file === undefined ? undefined : readFileSync(file));
  const tls = scheme === 'tls' ? { key: read(o.tlsKey), cert: read(o.tlsCert), ca: read(o.tlsCa) } : undefined;
  return {
    codec: passThrough(o.codec),
    ...(o.highWaterMark !== undefined ? { highWaterMark: o.highWaterMark } : {}),
    ...(tls ? { tls: Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined)) } : {}),
  };
}

function checkUrl(url: string): void {
  let scheme: string;
  try {
    scheme = parseUrl(url).scheme;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  if (scheme === 'pipe') throw new UsageError('a pipe: channel joins a Node program and the child it started; bridge other URLs');
  if (scheme === 'fifo') throw new UsageError('fifo: is one-way; a bridge forwards both ways (use unix:, shm:, mq:, ...)');
}

/** One end: the first peer to connect when listening (the listener is closed then), else a connection. */
async function openEnd(url: string, listening: boolean, o: BridgeOptions, cleanups: Set<() => Promise<void>>): Promise<Channel<Uint8Array, Buffer>> {
  const options = endOptions(url, o);
  if (!listening) {
    const ms = o.retry === undefined ? undefined : o.retry === true ? DEFAULT_RETRY_MS : o.retry;
    return connect<Uint8Array, Buffer>(url, { ...options, ...(ms !== undefined ? { retry: true, timeout: ms } : {}) });
  }
  const server = await listen<Uint8Array, Buffer>(url, options);
  const stop = () => server.close();
  cleanups.add(stop);
  try {
    process.stderr.write(`ipckit: listening on ${server.url} (pid ${process.pid})\n`);
    return (await server[Symbol.asyncIterator]().next()).value as Channel<Uint8Array, Buffer>;
  } finally {
    cleanups.delete(stop);
    await server.close();
  }
}

/**
 * Moves messages from `from` to `to` until `from` ends: a batch read, then
 * sent (resolved: in the other transport), then the next read. Requests to
 * `from` are asked of `to`, and the answer (or the error) goes back.
 */
async function pump(from: Channel<Uint8Array, Buffer>, to: Channel<Uint8Array, Buffer>, max: number): Promise<void> {
  from.onRequest(async (request) => {
    try {
      return await to.request(request);
    } catch (e) {
      const err = e as Error & { code?: string; remoteCode?: string };
      // The far handler's own error passes through as it was; anything else says it came from the bridge.
      throw Object.assign(new Error(err.code === 'ERR_IPCKIT_REMOTE' ? err.message : `bridge: ${err.message}`), { code: err.remoteCode ?? err.code });
    }
  });
  for (;;) {
    const batch = await from.receiveBatch(max);
    if (batch.length === 0) return;
    await to.sendBatch(batch);
  }
}

async function bridge(localUrl: string, remoteUrl: string, o: BridgeOptions): Promise<void> {
  if (!CODECS.includes(o.codec)) throw new UsageError(`--codec must be one of ${CODECS.join(', ')}`);
  checkUrl(localUrl);
  checkUrl(remoteUrl);
  if (o.retry !== undefined && o.listenLocal && o.listenRemote) throw new UsageError('--retry is for an end that connects; both ends listen');
  const cleanups = new Set<() => Promise<void>>();
  const release = cleanupOnSignal(() => Promise.all([...cleanups].map((fn) => fn())));
  const ends = await Promise.allSettled([openEnd(localUrl, !!o.listenLocal, o, cleanups), openEnd(remoteUrl, !!o.listenRemote, o, cleanups)]);
  const opened = ends.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = ends.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(opened.map((ch) => ch.close()));
    release();
    throw failed.reason;
  }
  const [local, remote] = opened as [Channel<Uint8Array, Buffer>, Channel<Uint8Array, Buffer>];
  const closeBoth = () => Promise.all([local.close(), remote.close()]).then(() => {});
  cleanups.add(closeBoth);
  process.stderr.write(`ipckit: bridging ${localUrl} and ${remoteUrl}\n`);
  const max = Math.min(BATCH, o.highWaterMark ?? BATCH);
  const sides = [
    { name: 'local', url: localUrl, ch: local, pump: settled(pump(local, remote, max)) },
    { name: 'remote', url: remoteUrl, ch: remote, pump: settled(pump(remote, local, max)) },
  ];
  // The first side to end decides. A pump also ends when its send fails: the other side ended meanwhile.
  const failure = await Promise.race(sides.map((s) => s.pump));
  const lost = sides.find((s) => s.ch.closeInfo?.reason === 'peer-lost');
  if (lost) {
    // What the lost side sent before it went is passed on (a bounded wait: the other app may not read),
    // then the bridge exits without closing the other side, which so sees peer-lost too, not a clean close.
    await Promise.race([lost.pump, new Promise((r) => setTimeout(r, LOST_DRAIN_MS).unref())]);
    process.stderr.write(`ipckit: bridge: the ${lost.name} side (${lost.url}) was lost: ${lost.ch.closeInfo!.error?.message ?? 'peer-lost'}\n`);
    process.exit(EXIT_PEER_LOST);
  }
  const infos = sides.map((s) => ({ ...s, info: s.ch.closeInfo }));
  await closeBoth();
  cleanups.delete(closeBoth);
  release();
  const broken = infos.find((s) => s.info?.reason === 'error');
  if (broken) throw broken.info!.error;
  const ended = infos.find((s) => s.info?.reason === 'peer-closed');
  if (!ended && failure) throw failure;
  process.stderr.write(`ipckit: bridge: the ${ended?.name ?? 'local'} side (${ended?.url ?? localUrl}) closed\n`);
}

/** A promise's error as its value (undefined when it resolved). */
function settled(p: Promise<unknown>): Promise<Error | undefined> {
  return p.then(() => undefined, (e: Error) => e);
}

export function register(program: Command): void {
  program
    .command('bridge')
    .description('forward messages (and requests) both ways between two channels, e.g. a local shm: or mq: channel and a tcp:// or tls:// one; connects to both unless --listen-local / --listen-remote')
    .argument('<local-url>', 'one channel URL, e.g. shm:NAME, mq:/NAME, unix:/path')
    .argument('<remote-url>', 'the other, e.g. tcp://host:port, tls://host:port')
    .option('--listen-local', 'listen on <local-url> and bridge the first peer that connects (default: connect)')
    .option('--listen-remote', 'listen on <remote-url> and bridge the first peer that connects (default: connect)')
    .option('--codec <codec>', `the codec both apps use (${CODECS.join(', ')}); messages pass through undecoded`, 'raw')
    .option('--retry [ms]', `keep trying to connect while nobody listens yet (or the network is not up), for up to this many ms (default ${DEFAULT_RETRY_MS})`, retryOption)
    .option('--high-water-mark <n>', 'messages each end holds before the sender waits (default 1024)', integerOption('high-water-mark', 1, 1 << 24))
    .option('--tls-key <file>', 'tls:// listening end: its private key (PEM)')
    .option('--tls-cert <file>', 'tls:// listening end: its certificate (PEM)')
    .option('--tls-ca <file>', 'tls:// connecting end: the CA that signed the listener\'s certificate (PEM; default: the system\'s)')
    .addHelpText('after', `\nExit status: 0 a side closed cleanly, ${EXIT_PEER_LOST} a side was lost (peer-lost: killed, or the network cut), 1 another failure, 2 a usage error.`)
    .action(bridge);
}
