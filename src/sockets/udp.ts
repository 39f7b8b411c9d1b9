// UDP, thin: Node's dgram with Promises and IpcError. Datagrams keep their
// boundaries but may be lost or reordered (SOCK_DGRAM over AF_INET).
import dgram from 'node:dgram';
import { toIpcError, typeError } from '../core/errors.js';
import { checkInteger, checkOptions, checkString } from '../core/validate.js';

export interface UdpBindOptions {
  type?: 'udp4' | 'udp6';
  /** Default '127.0.0.1' ('::1' for udp6). */
  host?: string;
}

/** A bound dgram.Socket (port 0 picks a free one: socket.address().port). */
export function bind(port: number, options?: UdpBindOptions): Promise<dgram.Socket> {
  checkInteger(port, 'port', 0, 65535);
  const o = checkOptions(options, 'options', ['type', 'host']) as UdpBindOptions;
  const type = o.type ?? 'udp4';
  if (type !== 'udp4' && type !== 'udp6') throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.type must be 'udp4' or 'udp6'");
  const host = o.host === undefined ? (type === 'udp4' ? '127.0.0.1' : '::1') : checkString(o.host, 'options.host');
  const socket = dgram.createSocket(type);
  return new Promise((resolve, reject) => {
    socket.once('error', (e) => reject(toIpcError(e, { path: `${host}:${port}` })));
    socket.bind(port, host, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/** Sends one datagram; resolves when the kernel took it. */
export function send(socket: dgram.Socket, data: string | Uint8Array, port: number, host = '127.0.0.1'): Promise<void> {
  checkInteger(port, 'port', 1, 65535);
  return new Promise((resolve, reject) => {
    socket.send(data, port, host, (e) => (e ? reject(toIpcError(e, { path: `${host}:${port}` })) : resolve()));
  });
}
