// `send --raw` / `recv --raw`: plain bytes on a stream, no frames and no
// hello, so any byte-stream program (socat, nc, a C client) is a peer. Only
// where a byte stream is what the URL names: unix:, unix-abstract:, tcp://
// and fifo: (the other transports carry messages, not bytes).
import { once } from 'node:events';
import net from 'node:net';
import { IpcError } from '../core/errors.js';
import type { Endpoint } from '../channel/url.js';
import * as fifo from '../pipes/fifo.js';
import * as unix from '../sockets/unix.js';
import { cleanupOnSignal } from './interrupt.js';

export const RAW_SCHEMES = ['unix', 'unix-abstract', 'tcp', 'fifo'];

/** Node's net errors in the words of every other ipckit error: "ECONNREFUSED: connection refused, connect 'tcp://...'". */
function netError(e: NodeJS.ErrnoException, syscall: string, url: string): Error {
  return typeof e.errno === 'number' ? new IpcError(e.errno, e.syscall ?? syscall, { path: url }) : e;
}

function unixAddress(ep: Endpoint): string {
  if (ep.scheme === 'unix') return ep.path;
  if (ep.scheme === 'unix-abstract') return `\0${ep.name}`;
  throw new Error(`not a Unix socket URL: ${ep.scheme}`);
}

/** Connects to a raw listener; for fifo: opens the FIFO for writing (waiting up to `timeout` ms for a reader). */
export async function rawConnect(ep: Endpoint, url: string, timeout?: number): Promise<net.Socket> {
  if (ep.scheme === 'fifo') return fifo.open(ep.path, 'w', timeout === undefined ? {} : { timeout });
  if (ep.scheme === 'tcp') {
    const socket = net.connect(ep.port, ep.host);
    try {
      await once(socket, 'connect');
    } catch (e) {
      throw netError(e as NodeJS.ErrnoException, 'connect', url);
    }
    return socket;
  }
  try {
    return await unix.connect(unixAddress(ep));
  } catch (e) {
    throw e instanceof IpcError ? new IpcError(e.errno, e.syscall, { path: url }) : e;
  }
}

export interface RawListener {
  /** The URL with the port a tcp://host:0 listener got. */
  url: string;
  /** The first peer (fifo: the FIFO opened for reading, once a writer opened it). */
  first: Promise<net.Socket>;
  /** Stops listening and removes what listening made (socket file, FIFO). Idempotent. */
  close(): void;
}

/** Listens for one raw peer. An interrupt before close() removes what was made. */
export async function rawListen(ep: Endpoint, url: string): Promise<RawListener> {
  if (ep.scheme === 'fifo') {
    let made = false;
    if (!fifo.isFifo(ep.path)) {
      fifo.create(ep.path);
      made = true;
    }
    const abort = new AbortController();
    let closed = false;
    const close = () => {
      if (closed) return;
      closed = true;
      abort.abort();
      if (made) fifo.remove(ep.path);
    };
    const release = cleanupOnSignal(close);
    const first = fifo.open(ep.path, 'r', { signal: abort.signal });
    first.catch(() => {});
    return { url, first, close: () => (release(), close()) };
  }
  let server: net.Server;
  if (ep.scheme === 'tcp') {
    server = net.createServer();
    server.listen(ep.port, ep.host);
    try {
      await once(server, 'listening');
    } catch (e) {
      throw netError(e as NodeJS.ErrnoException, 'bind', url);
    }
  } else {
    try {
      server = await unix.listen(unixAddress(ep));
    } catch (e) {
      throw e instanceof IpcError ? new IpcError(e.errno, e.syscall, { path: url }) : e;
    }
  }
  const release = cleanupOnSignal(() => server.close());
  const addr = server.address();
  const actual = ep.scheme === 'tcp' && addr && typeof addr === 'object' ? `tcp://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${addr.port}` : url;
  const first = once(server, 'connection').then(([socket]) => socket as net.Socket);
  return {
    url: actual,
    first,
    close: () => {
      release();
      server.close();
    },
  };
}

/** Writes `data` (or all of stdin, as it comes) to the stream and ends it; resolves once the bytes are handed to the kernel. */
export async function rawSend(stream: net.Socket, data: Buffer | undefined): Promise<void> {
  const release = cleanupOnSignal(() => stream.destroy());
  try {
    // Replies are not this command's business; reading them keeps the connection from stalling.
    if (stream.readable) stream.resume();
    const finished = once(stream, 'finish');
    if (data !== undefined) stream.end(data);
    else process.stdin.pipe(stream);
    await finished;
  } finally {
    stream.destroy();
    release();
  }
}

/** Copies everything the stream delivers to stdout until the peer ends it. */
export async function rawReceive(stream: net.Socket): Promise<void> {
  const release = cleanupOnSignal(() => stream.destroy());
  try {
    const ended = once(stream, 'end');
    stream.pipe(process.stdout, { end: false });
    await ended;
  } finally {
    stream.destroy();
    release();
  }
}
