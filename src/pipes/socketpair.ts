// socketpair(2): two connected Unix sockets, a full-duplex pipe. The ends are
// the sockets area's types (UnixStream, MessageSocket); only how they are made
// lives here, with the other pipes.
import { sys, typeError } from '../core/errors.js';
import { native } from '../core/native.js';
import { checkBoolean, checkOptions } from '../core/validate.js';
import { MESSAGE_SOCKET_OPTIONS, MessageSocket, type MessageSocketOptions } from '../sockets/message-socket.js';
import { UnixStream, socketLimit } from '../sockets/unix.js';
import { socketTypeNumber, type SocketPairType } from './pipe.js';

export interface SocketPairOptions extends MessageSocketOptions {
  type?: SocketPairType;
  /** stream: MessageSockets that can pass descriptors instead of net.Sockets. Default false. */
  fds?: boolean;
}

/**
 * Two connected Unix sockets (socketpair): full duplex, unlike pipe().
 * 'stream' ends are UnixStreams (net.Socket); 'seqpacket'/'dgram' ends are
 * MessageSockets. Hand one end's fd to a child via spawn's stdio.
 */
export function socketpair(options: SocketPairOptions & { type?: 'stream'; fds: true }): [MessageSocket, MessageSocket];
export function socketpair(options?: SocketPairOptions & { type?: 'stream' }): [UnixStream, UnixStream];
export function socketpair(options: SocketPairOptions & { type: 'seqpacket' | 'dgram' }): [MessageSocket, MessageSocket];
export function socketpair(options?: SocketPairOptions): [UnixStream, UnixStream] | [MessageSocket, MessageSocket];
export function socketpair(options?: SocketPairOptions): [UnixStream, UnixStream] | [MessageSocket, MessageSocket] {
  const o = checkOptions(options, 'options', ['type', 'fds', ...MESSAGE_SOCKET_OPTIONS]) as SocketPairOptions;
  const type = socketTypeNumber(o.type);
  const fdPassing = checkBoolean(o.fds, 'options.fds', false);
  if (fdPassing && type !== native.pipeConstants.SOCK_STREAM) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.fds is for type 'stream'");
  const [a, b] = sys(() => native.socketpairCreate(type, false), {}, socketLimit);
  if (type === native.pipeConstants.SOCK_STREAM && fdPassing) {
    return [new MessageSocket(MessageSocket.token, a, 'stream', null, o), new MessageSocket(MessageSocket.token, b, 'stream', null, o)];
  }
  if (type === native.pipeConstants.SOCK_STREAM) {
    return [new UnixStream(a, { readable: true, writable: true }), new UnixStream(b, { readable: true, writable: true })];
  }
  const kind = type === native.pipeConstants.SOCK_DGRAM ? 'dgram' : 'seqpacket';
  return [new MessageSocket(MessageSocket.token, a, kind, null, o), new MessageSocket(MessageSocket.token, b, kind, null, o)];
}
