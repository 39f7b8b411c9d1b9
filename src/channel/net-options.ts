// The options of the network transports (tcp://, tls://): heartbeats that
// find a dead peer or a cut network, and the TLS settings. Local transports
// learn of a dead peer from the kernel at once and ignore `heartbeat`.
import { rangeError, typeError } from '../core/errors.js';
import { checkBoolean, checkInteger, checkOptions } from '../core/validate.js';

export interface HeartbeatOptions {
  /** ms without sending anything after which a ping frame goes out. Default 5000. */
  interval?: number;
  /** ms without receiving anything (a frame or a ping) after which the link closes with peer-lost. Default 15000; at least 2 × interval. */
  timeout?: number;
}

export interface Heartbeat {
  interval: number;
  timeout: number;
}

/** What `tls` passes to Node's tls module (the names are Node's own). */
export interface TlsOptions {
  /** Listener: its private key (PEM), required. */
  key?: string | Buffer | Array<string | Buffer>;
  /** Listener: its certificate chain (PEM), required. A connector: a client certificate, with key. */
  cert?: string | Buffer | Array<string | Buffer>;
  /** The certificate authorities to trust instead of the system's (PEM). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** Listener: ask connectors for a certificate (checked against `ca`). Default false. */
  requestCert?: boolean;
  /** Refuse a peer whose certificate does not verify. Default true. */
  rejectUnauthorized?: boolean;
  /** Connector: the name the listener's certificate must carry. Default the URL's host (not for an IP address). */
  servername?: string;
}

export interface NetSettings {
  /** null: no heartbeat (heartbeat: false). */
  heartbeat: Heartbeat | null;
  tls: TlsOptions | null;
}

const HEARTBEAT_DEFAULTS: Heartbeat = { interval: 5000, timeout: 15000 };
const HEARTBEAT_OPTIONS = ['interval', 'timeout'] as const;
const TLS_OPTIONS = ['key', 'cert', 'ca', 'requestCert', 'rejectUnauthorized', 'servername'] as const;
const MAX_MS = 2 ** 31 - 1;

/** options.heartbeat: true/undefined (the defaults), false (none), or { interval?, timeout? }. */
function checkHeartbeat(value: unknown): Heartbeat | null {
  if (value === undefined || value === true) return HEARTBEAT_DEFAULTS;
  if (value === false) return null;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.heartbeat must be a boolean or { interval?, timeout? }');
  }
  const o = checkOptions(value as HeartbeatOptions, 'options.heartbeat', HEARTBEAT_OPTIONS) as HeartbeatOptions;
  const interval = checkInteger(o.interval, 'options.heartbeat.interval', 10, MAX_MS, HEARTBEAT_DEFAULTS.interval);
  const timeout = checkInteger(o.timeout, 'options.heartbeat.timeout', 1, MAX_MS, Math.max(HEARTBEAT_DEFAULTS.timeout, 3 * interval));
  // A ping goes out at most ~1.25 intervals after the last frame: a shorter timeout would call a quiet peer lost.
  if (timeout < 2 * interval) throw rangeError('ERR_IPCKIT_OUT_OF_RANGE', `options.heartbeat.timeout (${timeout}) must be at least 2 × interval (${2 * interval})`);
  return { interval, timeout };
}

const PEM = (v: unknown): boolean => typeof v === 'string' || Buffer.isBuffer(v);

function checkPem(value: unknown, what: string): void {
  if (value === undefined) return;
  if (PEM(value) || (Array.isArray(value) && value.length > 0 && value.every(PEM))) return;
  throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', `${what} must be PEM text: a string, a Buffer or an array of them`);
}

/** options.tls, checked for `side`: a listener needs key and cert. */
function checkTls(value: unknown, side: 'connect' | 'listen'): TlsOptions {
  if (value !== undefined && (typeof value !== 'object' || value === null || Array.isArray(value))) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.tls must be an object such as { key, cert } (listen) or { ca } (connect)');
  }
  const o = checkOptions(value as TlsOptions | undefined, 'options.tls', TLS_OPTIONS) as TlsOptions;
  for (const name of ['key', 'cert', 'ca'] as const) checkPem(o[name], `options.tls.${name}`);
  checkBoolean(o.requestCert, 'options.tls.requestCert', false);
  checkBoolean(o.rejectUnauthorized, 'options.tls.rejectUnauthorized', true);
  if (o.servername !== undefined && (typeof o.servername !== 'string' || o.servername === '')) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_TYPE', 'options.tls.servername must be a non-empty string');
  }
  if (side === 'listen' && (o.key === undefined || o.cert === undefined)) {
    throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'a tls:// listener needs options.tls.key and options.tls.cert (PEM)');
  }
  if ((o.key === undefined) !== (o.cert === undefined)) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', 'options.tls.key and options.tls.cert go together');
  return o;
}

/** The network options of a channel on `scheme`; `tls` is refused on any scheme but tls:. */
export function netSettings(o: { heartbeat?: unknown; tls?: unknown }, scheme: string, side: 'connect' | 'listen'): NetSettings {
  const heartbeat = checkHeartbeat(o.heartbeat);
  if (scheme !== 'tls') {
    if (o.tls !== undefined) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', `options.tls applies to tls:// channels only, not ${scheme}:`);
    return { heartbeat, tls: null };
  }
  return { heartbeat, tls: checkTls(o.tls, side) };
}
