// pipe: / pipe:FD: an inherited socketpair (default fd 3) made by
// channel.fork(..., { transport: 'pipe' }). Only connect: nobody listens.
import { Socket } from 'node:net';
import { typeError } from '../../core/errors.js';
import { HANDSHAKE_MS } from '../control.js';
import { connectStream } from '../handshake.js';
import type { Link } from '../link.js';
import { MAX_LIMIT, STREAM_MAX, urlError, type Settings, type Transport } from '../transport.js';

export const PIPE_SCHEME = 'pipe';
export type PipeEndpoint = { scheme: typeof PIPE_SCHEME; fd: number };

/** The hello exchange on a socketpair end (the parent's side too, in fork()). */
export function connectPipe(socket: Socket, s: Settings, timeout: number): Promise<Link> {
  return connectStream(PIPE_SCHEME, `${PIPE_SCHEME}:`, socket, s, null, timeout);
}

export const pipe: Transport<PipeEndpoint> = {
  schemes: [PIPE_SCHEME],
  parse(_scheme, rest, url) {
    const fdText = rest.replace(/^\/\//, '') || process.env.IPCKIT_CHANNEL_FD || '3';
    const fd = Number(fdText);
    if (!Number.isInteger(fd) || fd < 0) throw urlError(url, 'expected pipe: or pipe:FD');
    return { scheme: PIPE_SCHEME, fd };
  },
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: false,

  connect(ep, url, s, { timeout }) {
    const socket = new Socket({ fd: ep.fd, readable: true, writable: true });
    return connectStream(ep.scheme, url, socket, s, null, timeout ?? HANDSHAKE_MS);
  },

  listen() {
    return Promise.reject(typeError('ERR_IPCKIT_INVALID_URL', 'pipe: channels are made by channel.fork(); the child uses channel.parent()'));
  },
};
