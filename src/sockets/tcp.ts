// TCP, thin: Node's net with Promises and IpcError. The AF_INET stream calls
// (socket, bind, listen, accept, connect) are exactly net.Server/net.Socket;
// pair it with src/sockets/framing.ts for messages.
import net from 'node:net';
import { toIpcError } from '../core/errors.js';
import { checkInteger, checkOptions, checkString } from '../core/validate.js';

export interface TcpListenOptions {
  /** Address to bind. Default '127.0.0.1' (loopback: IPC, not a network service). */
  host?: string;
  backlog?: number;
}

/** Listens on `port` (0 picks a free one: read it from server.address().port). */
export function listen(port: number, options?: TcpListenOptions): Promise<net.Server> {
  checkInteger(port, 'port', 0, 65535);
  const o = checkOptions(options, 'options', ['host', 'backlog']) as TcpListenOptions;
  const host = o.host === undefined ? '127.0.0.1' : checkString(o.host, 'options.host');
  const backlog = checkInteger(o.backlog, 'options.backlog', 0, 0x7fffffff, 511);
  const server = net.createServer();
  return new Promise((resolve, reject) => {
    server.once('error', (e) => reject(toIpcError(e, { path: `${host}:${port}` })));
    server.listen({ port, host, backlog }, () => resolve(server));
  });
}

export interface TcpConnectOptions {
  /** Default '127.0.0.1'. */
  host?: string;
  /** Disable Nagle's algorithm (small messages leave at once). Default true. */
  noDelay?: boolean;
}

/** Connects; resolves with the connected net.Socket, rejects with an IpcError (ECONNREFUSED, ...). */
export function connect(port: number, options?: TcpConnectOptions): Promise<net.Socket> {
  checkInteger(port, 'port', 1, 65535);
  const o = checkOptions(options, 'options', ['host', 'noDelay']) as TcpConnectOptions;
  const host = o.host === undefined ? '127.0.0.1' : checkString(o.host, 'options.host');
  const noDelay = o.noDelay ?? true;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host, noDelay });
    const onError = (e: Error) => reject(toIpcError(e, { path: `${host}:${port}` }));
    socket.once('error', onError);
    socket.once('connect', () => {
      socket.off('error', onError);
      resolve(socket);
    });
  });
}
