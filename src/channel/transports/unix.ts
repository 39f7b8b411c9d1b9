// unix:/path (a socket file, through ipckit's unix.connect/listen) and
// unix-abstract:NAME (the abstract namespace, through Node's net): byte
// streams with the hello in-band.
import { connect as netConnect, type Socket } from 'node:net';
import { connect as unixConnect, listen as unixListen, peerCredentials, type UnixConnection } from '../../sockets/unix.js';
import type { PeerCredentials } from '../access.js';
import { HANDSHAKE_MS } from '../control.js';
import { acceptStream, connectStream } from '../handshake.js';
import { UNIX_BACKLOG_MS, listenNet, netConnectRetry, netListener, withUrl } from '../net.js';
import { MAX_LIMIT, STREAM_MAX, parseName, parsePath, type Transport } from '../transport.js';

export type UnixEndpoint = { scheme: 'unix'; path: string } | { scheme: 'unix-abstract'; name: string };

function address(ep: UnixEndpoint): string {
  return ep.scheme === 'unix' ? ep.path : `\0${ep.name}`;
}

/** The peer's credentials, or null when the socket is already gone (it is then dropped). */
function credentialsOf(socket: Socket, read: () => PeerCredentials): PeerCredentials | null {
  try {
    return read();
  } catch {
    socket.destroy();
    return null;
  }
}

export const unix: Transport<UnixEndpoint> = {
  schemes: ['unix', 'unix-abstract'],
  parse: (scheme, rest, url) => (scheme === 'unix' ? { scheme, path: parsePath(scheme, rest, url, true) } : { scheme: 'unix-abstract', name: parseName(rest, url) }),
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: true,

  async connect(ep, url, s, { timeout }) {
    const handshakeMs = timeout ?? HANDSHAKE_MS;
    if (ep.scheme === 'unix-abstract') {
      const socket = await netConnectRetry(() => netConnect(address(ep)), url, timeout ?? UNIX_BACKLOG_MS);
      return connectStream(ep.scheme, url, socket, s, peerCredentials(socket), handshakeMs);
    }
    // unix: through unix.connect (retries while the backlog is full).
    let socket: Awaited<ReturnType<typeof unixConnect>>;
    try {
      socket = await unixConnect(address(ep), timeout !== undefined ? { timeout } : {});
    } catch (e) {
      throw withUrl(e, url);
    }
    return connectStream(ep.scheme, url, socket, s, socket.peerCredentials(), handshakeMs);
  },

  async listen(ep, url, s, { unlink }, events) {
    if (ep.scheme === 'unix-abstract') {
      const server = await listenNet(
        url,
        (server, listening) => server.listen(address(ep), listening),
        (socket) => {
          const peer = credentialsOf(socket, () => peerCredentials(socket));
          if (peer) acceptStream(ep.scheme, url, socket, peer, s, events);
        },
        (e) => events.error(e),
      );
      return netListener(server);
    }
    // unix: through unix.listen: the socket file is mode 0600 whatever the
    // umask, and only a stale socket file is ever replaced.
    let server: Awaited<ReturnType<typeof unixListen>>;
    try {
      // Connecting needs write permission on the file: 0600 admits this user
      // and root; when allowUids/allowGids admit others, the file lets anyone
      // try and SO_PEERCRED decides.
      server = await unixListen(address(ep), { reclaim: unlink, unlinkOnClose: true, mode: s.access.widened ? 0o666 : 0o600 });
    } catch (e) {
      throw withUrl(e, url);
    }
    server.on('connection', (socket: UnixConnection) => {
      const peer = credentialsOf(socket, () => socket.peerCredentials());
      if (peer) acceptStream(ep.scheme, url, socket, peer, s, events);
    });
    server.on('error', (e: Error) => events.error(e));
    return netListener(server);
  },
};
