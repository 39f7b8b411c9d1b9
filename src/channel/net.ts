// Node `net` sockets for the channel transports that use them: tcp:// and
// unix-abstract: (Node's own addressing of abstract names, which ipckit's
// unix-abstract: listeners have always used).
import { createServer, type Server, type Socket } from 'node:net';
import { IpcError, timeoutError } from '../core/errors.js';
import type { Listener } from './transport.js';

/** Node's net errors as IpcError, naming the channel URL. */
function wrapNetError(e: NodeJS.ErrnoException, syscall: string, url: string): Error {
  return typeof e.errno === 'number' ? new IpcError(Math.abs(e.errno), e.syscall ?? syscall, { path: url }) : e;
}

/** An IpcError of ipckit's own sockets, naming the channel URL instead of the socket address. */
export function withUrl(e: unknown, url: string): unknown {
  return e instanceof IpcError ? new IpcError(e.errno, e.syscall, { path: url, ...(e.limit ? { limit: e.limit } : {}) }) : e;
}

/** How long a connect keeps retrying while a Unix listener's backlog is full (as unix.connect). */
export const UNIX_BACKLOG_MS = 5000;
const BACKLOG_RETRY_MS = [1, 2, 5, 10, 20, 50];

/**
 * A Unix connect to a listener whose backlog is full fails with EAGAIN and
 * never completes by itself: retry with back-off for up to `timeoutMs`.
 * `limitMs`: a connect still unanswered then is cut (IpcError ETIMEDOUT,
 * syscall connect): a TCP SYN to a host that does not answer would wait for
 * the kernel's own limit (about two minutes) and keep the process alive.
 * `ready`: the event that ends the connect ('secureConnect' for TLS).
 */
export async function netConnectRetry(connect: () => Socket, url: string, timeoutMs: number, limitMs?: number, ready = 'connect'): Promise<Socket> {
  const started = Date.now();
  for (let attempt = 0; ; attempt++) {
    try {
      return await new Promise<Socket>((resolve, reject) => {
        const sock = connect();
        const timer = limitMs === undefined ? undefined : setTimeout(() => {
          sock.destroy();
          reject(timeoutError('connect', { path: url }, `no answer within ${limitMs} ms`));
        }, limitMs);
        sock.once(ready, () => {
          clearTimeout(timer);
          sock.removeAllListeners('error');
          resolve(sock);
        });
        sock.once('error', (e) => {
          clearTimeout(timer);
          reject(e);
        });
      });
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      if (e instanceof IpcError) throw e;
      if (err.code !== 'EAGAIN') throw wrapNetError(err, 'connect', url);
      if (Date.now() - started >= timeoutMs) throw timeoutError('connect', { path: url }, `the listener's backlog stayed full for ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, BACKLOG_RETRY_MS[Math.min(attempt, BACKLOG_RETRY_MS.length - 1)]));
    }
  }
}

/**
 * A net.Server listening (`bind` calls server.listen with the callback), each
 * connection to `onSocket`; `make` makes another kind (a tls.Server).
 */
export async function listenNet<S extends Server = Server>(
  url: string,
  bind: (server: S, listening: () => void) => void,
  onSocket: (socket: Socket) => void,
  onError: (e: Error) => void,
  make: (onSocket: (socket: Socket) => void) => S = (onSocket) => createServer(onSocket) as S,
): Promise<S> {
  const server = make(onSocket);
  await new Promise<void>((resolve, reject) => {
    server.once('error', (e: NodeJS.ErrnoException) => reject(wrapNetError(e, 'bind', url)));
    bind(server, () => {
      server.removeAllListeners('error');
      resolve();
    });
  });
  server.on('error', onError);
  return server;
}

/** The Listener of a net.Server (or ipckit's unix.listen server, which has the same three methods). */
export function netListener(server: Pick<Server, 'close' | 'ref' | 'unref'>, url?: string): Listener {
  // net's close callback waits for every accepted connection to end; the
  // listening socket itself is closed at once, which is all we promise.
  return { close: () => server.close(), ref: () => server.ref(), unref: () => server.unref(), ...(url !== undefined ? { url } : {}) };
}
