// options.nats of nats:// channels: what is handed to the NATS client
// (@nats-io/transport-node) when ipckit connects to the server. The URL names
// one server and the subject; these add the rest of a real deployment.
import { typeError } from '../core/errors.js';
import { checkInteger, checkObject, checkOptions } from '../core/validate.js';

export interface NatsOptions {
  /** More servers of the same cluster, 'host:port' or 'nats://host:port' (the URL's server comes first). */
  servers?: string[];
  /** TLS to the server, as the client takes it ({ ca, cert, key, caFile, certFile, keyFile, handshakeFirst }): passed through. */
  tls?: Record<string, unknown>;
  /** Credentials other than the URL's user:pass. */
  user?: string;
  pass?: string;
  token?: string;
  /** The client's name, as the server's monitoring shows it. */
  name?: string;
  /** ms of silence from the peer before it is probed (how soon a dead peer is noticed; an idle channel costs a probe and its answer this often). Default 200. */
  probeInterval?: number;
  /** ms without an answer to a probe of the peer before the channel is peer-lost (a partition or a stalled peer). Default 10000. */
  probeTimeout?: number;
}

const NATS_OPTIONS = ['servers', 'tls', 'user', 'pass', 'token', 'name', 'probeInterval', 'probeTimeout'] as const;
const DEFAULT_PROBE_INTERVAL_MS = 200;
const DEFAULT_PROBE_TIMEOUT_MS = 10_000;

/** options.nats, checked; every field as given, the probe timings with their defaults. */
export interface NatsSettings extends Omit<NatsOptions, 'probeInterval' | 'probeTimeout'> {
  probeInterval: number;
  probeTimeout: number;
}

function checkText(value: unknown, what: string): void {
  if (value !== undefined && (typeof value !== 'string' || value.length === 0)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be a non-empty string`);
}

export function checkNatsOptions(value: NatsOptions | undefined): NatsSettings {
  const o = checkOptions(value, 'options.nats', NATS_OPTIONS) as NatsOptions;
  if (o.servers !== undefined) {
    if (!Array.isArray(o.servers)) throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', "options.nats.servers must be an array of 'host:port' strings");
    o.servers.forEach((s, k) => checkText(s, `options.nats.servers[${k}]`));
  }
  if (o.tls !== undefined) checkObject(o.tls, 'options.nats.tls');
  for (const k of ['user', 'pass', 'token', 'name'] as const) checkText(o[k], `options.nats.${k}`);
  const probeInterval = checkInteger(o.probeInterval, 'options.nats.probeInterval', 10, 2 ** 31 - 1, DEFAULT_PROBE_INTERVAL_MS);
  const probeTimeout = checkInteger(o.probeTimeout, 'options.nats.probeTimeout', 100, 2 ** 31 - 1, DEFAULT_PROBE_TIMEOUT_MS);
  return { ...o, probeInterval, probeTimeout };
}
