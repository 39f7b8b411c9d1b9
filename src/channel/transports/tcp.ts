// tcp://host:port: a byte stream with the hello in-band. The kernel cannot
// say who is at the other end, so allowUids/allowGids are refused. Built for
// real networks: `retry` also waits out a network that is not there yet
// (ETIMEDOUT, EHOSTUNREACH, ENETUNREACH), heartbeats find a dead host or a
// cut link (see stream.ts), and SO_KEEPALIVE is on.
import { connect as netConnect, type Server, type Socket } from 'node:net';
import { HANDSHAKE_MS } from '../control.js';
import { acceptStream, connectStream } from '../handshake.js';
import { UNIX_BACKLOG_MS, listenNet, netConnectRetry, netListener } from '../net.js';
import { MAX_LIMIT, STREAM_MAX, urlError, type Listener, type ListenerEvents, type Settings, type Transport } from '../transport.js';
import { IpcError } from '../../core/errors.js';
import type { Heartbeat } from '../net-options.js';

export type TcpEndpoint = { scheme: 'tcp'; host: string; port: number };

/** host and port of a scheme://host:port URL (port 0 on listen: any free port). */
export function parseHostPort(scheme: string, url: string): { host: string; port: number } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw urlError(url, `expected ${scheme}://host:port`);
  }
  const port = Number(u.port);
  if (!u.hostname || !Number.isInteger(port) || port < 0 || port > 65535 || u.port === '') {
    throw urlError(url, `expected ${scheme}://host:port`);
  }
  return { host: u.hostname.replace(/^\[|\]$/g, ''), port };
}

/** The URL of a listener on `host` that got `port` (for scheme://host:0). */
function boundUrl(scheme: string, host: string, port: number): string {
  return `${scheme}://${host.includes(':') ? `[${host}]` : host}:${port}`;
}

/**
 * Connect errors of a network that is not there yet, which `retry` retries
 * besides ECONNREFUSED: the kernel's own connect timeout (SYNs unanswered),
 * no route to the host or its network.
 */
export function networkNotThere(e: unknown): boolean {
  if (!(e instanceof IpcError)) return false;
  return (e.code === 'ETIMEDOUT' && e.syscall === 'connect') || e.code === 'EHOSTUNREACH' || e.code === 'ENETUNREACH';
}

/**
 * SO_KEEPALIVE: the kernel probes an idle connection (here after the
 * heartbeat timeout, or a minute without heartbeats), so even a receiver
 * paused by backpressure, which reads no pings, learns of a dead host.
 */
export function keepAlive(socket: Socket, hb: Heartbeat | null): void {
  // TCP_KEEPIDLE is in whole seconds, at least 1.
  socket.setKeepAlive(true, Math.max(1000, hb ? hb.timeout : 60_000));
}

/**
 * Listens on ep's host and port (`make`: another kind of server, a
 * tls.Server); each connection gets keep-alive and the hello with this side's
 * heartbeat. The Listener's url names the port a port 0 got.
 */
export async function listenHostPort<S extends Server>(
  scheme: string,
  ep: { host: string; port: number },
  url: string,
  s: Settings,
  events: ListenerEvents,
  make?: (onSocket: (socket: Socket) => void) => S,
): Promise<{ server: S; listener: Listener }> {
  const server = await listenNet<S>(
    url,
    (server, listening) => server.listen(ep.port, ep.host, listening),
    (socket) => {
      keepAlive(socket, s.net.heartbeat);
      acceptStream(scheme, url, socket, null, s, events, s.net.heartbeat);
    },
    (e) => events.error(e),
    make,
  );
  const addr = server.address();
  const actualUrl = addr && typeof addr === 'object' ? boundUrl(scheme, ep.host, addr.port) : url;
  return { server, listener: netListener(server, actualUrl) };
}

export const tcp: Transport<TcpEndpoint> = {
  schemes: ['tcp'],
  parse(_scheme, _rest, url) {
    return { scheme: 'tcp', ...parseHostPort('tcp', url) };
  },
  maxMessageSize: { default: STREAM_MAX, max: MAX_LIMIT },
  peerCredentials: false,
  retryable: networkNotThere,

  async connect(ep, url, s, { timeout }) {
    const socket = await netConnectRetry(() => netConnect(ep.port, ep.host), url, timeout ?? UNIX_BACKLOG_MS, timeout ?? HANDSHAKE_MS);
    keepAlive(socket, s.net.heartbeat);
    return connectStream(ep.scheme, url, socket, s, null, timeout ?? HANDSHAKE_MS, s.net.heartbeat);
  },

  async listen(ep, url, s, _l, events) {
    return (await listenHostPort('tcp', ep, url, s, events)).listener;
  },
};
