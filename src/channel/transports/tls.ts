// tls://host:port: tcp:// inside TLS (Node's tls, OpenSSL): the same frames,
// hello, heartbeats and contract, encrypted and authenticated. The listener
// needs options.tls { key, cert }; a connector checks the listener's
// certificate against the system's CAs (or options.tls.ca) and the URL's
// host name, unless told otherwise.
import { isIP } from 'node:net';
import { connect as tlsConnect, createServer as tlsServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { stateError } from '../../core/errors.js';
import { HANDSHAKE_MS } from '../control.js';
import { connectStream } from '../handshake.js';
import { UNIX_BACKLOG_MS, netConnectRetry } from '../net.js';
import { MAX_LIMIT, STREAM_MAX, type Transport } from '../transport.js';
import { keepAlive, listenHostPort, networkNotThere, parseHostPort } from './tcp.js';

export type TlsEndpoint = { scheme: 'tls'; host: string; port: number };

/**
 * A TLS failure (no numeric errno: a certificate that does not verify, a
 * peer that does not speak TLS) as ERR_IPCKIT_TLS, with OpenSSL's code and
 * what to do about it; the original error is the cause.
 */
function tlsError(url: string, e: Error & { code?: string }, side: 'connect' | 'listen'): Error {
  const code = e.code ?? 'unknown';
  const cert = /CERT|SIGNATURE|ISSUER|ALTNAME|VERIFY/.test(code);
  const hint =
    side === 'connect' && cert
      ? ": the listener's certificate is not trusted by this side (give options.tls.ca, the CA that signed it, or options.tls.servername, the name it carries)"
      : side === 'listen'
        ? ' (the peer is not a TLS client, or it did not trust our certificate)'
        : ' (is the listener a tls:// one?)';
  const err = stateError('ERR_IPCKIT_TLS', `${url}: TLS handshake failed: ${e.message.trim().replace(/\s*\n\s*/g, ' ')} [${code}]${hint}`);
  (err as Error).cause = e;
  return err;
}

export const tls: Transport<TlsEndpoint> = {
  schemes: ['tls'],
  parse(_scheme, _rest, url) {
    return { scheme: 'tls', ...parseHostPort('tls', url) };
  },
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: false,
  retryable: networkNotThere,

  async connect(ep, url, s, { timeout }) {
    const o: ConnectionOptions = { ...s.net.tls, host: ep.host, port: ep.port };
    // SNI and the name check: the URL's host unless told (an IP address is checked against the certificate's IP entries).
    if (o.servername === undefined && !isIP(ep.host)) o.servername = ep.host;
    let socket: TLSSocket;
    try {
      socket = (await netConnectRetry(() => tlsConnect(o), url, timeout ?? UNIX_BACKLOG_MS, timeout ?? HANDSHAKE_MS, 'secureConnect')) as TLSSocket;
    } catch (e) {
      throw typeof (e as NodeJS.ErrnoException).errno === 'number' || (e as { syscall?: string }).syscall ? e : tlsError(url, e as Error, 'connect');
    }
    keepAlive(socket, s.net.heartbeat);
    return connectStream(ep.scheme, url, socket, s, null, timeout ?? HANDSHAKE_MS, s.net.heartbeat);
  },

  async listen(ep, url, s, _l, events) {
    const { server, listener } = await listenHostPort('tls', ep, url, s, events, (onSocket) => tlsServer({ ...s.net.tls, handshakeTimeout: HANDSHAKE_MS }, onSocket));
    // A client that fails the TLS handshake (not TLS, or it refused our certificate) costs the listener nothing.
    server.on('tlsClientError', (e) => events.error(tlsError(listener.url ?? url, e, 'listen')));
    return listener;
  },
};
