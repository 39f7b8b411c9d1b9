// tcp://host:port: a byte stream with the hello in-band. The kernel cannot
// say who is at the other end, so allowUids/allowGids are refused.
import { connect as netConnect } from 'node:net';
import { HANDSHAKE_MS } from '../control.js';
import { acceptStream, connectStream } from '../handshake.js';
import { UNIX_BACKLOG_MS, listenNet, netConnectRetry, netListener } from '../net.js';
import { MAX_LIMIT, STREAM_MAX, urlError, type Transport } from '../transport.js';

export type TcpEndpoint = { scheme: 'tcp'; host: string; port: number };

export const tcp: Transport<TcpEndpoint> = {
  schemes: ['tcp'],
  parse(_scheme, _rest, url) {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      throw urlError(url, 'expected tcp://host:port');
    }
    const port = Number(u.port);
    if (!u.hostname || !Number.isInteger(port) || port < 0 || port > 65535 || u.port === '') throw urlError(url, 'expected tcp://host:port');
    return { scheme: 'tcp', host: u.hostname.replace(/^\[|\]$/g, ''), port };
  },
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: false,

  async connect(ep, url, s, { timeout }) {
    const socket = await netConnectRetry(() => netConnect(ep.port, ep.host), url, timeout ?? UNIX_BACKLOG_MS);
    return connectStream(ep.scheme, url, socket, s, null, timeout ?? HANDSHAKE_MS);
  },

  async listen(ep, url, s, _l, events) {
    const server = await listenNet(
      url,
      (server, listening) => server.listen(ep.port, ep.host, listening),
      (socket) => acceptStream(ep.scheme, url, socket, null, s, events),
      (e) => events.error(e),
    );
    const addr = server.address();
    // tcp://host:0 asks for any free port: report the one we got.
    const actualUrl = addr && typeof addr === 'object' ? `tcp://${ep.host.includes(':') ? `[${ep.host}]` : ep.host}:${addr.port}` : url;
    return netListener(server, actualUrl);
  },
};
