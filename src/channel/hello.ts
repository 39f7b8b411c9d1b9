// The hello every channel transport opens with, one each way before any
// message: the protocol version, the transport, the codec's name and the
// largest message payload the sender accepts. A mismatch is a clear error at
// connect time instead of garbage later. Each side enforces its own limit on
// what it receives and sends at most the smaller of the two, so the
// listener's own limits always hold, whatever a connector asks for.
//
//   { "ipckit": 3, "transport": "shm", "codec": "json", "max": 1048576, ... }
//   refusal:  { "ipckit": 3, "error": "EACCES" | "EPROTO", "message": "..." }
import { stateError } from '../core/errors.js';
import { Access } from './access.js';

/** Bumped whenever what travels after the hello changes (3: mq: frames longer than one queue message travel in parts), so that mismatched peers fail at connect(), not mid-stream. */
const PROTOCOL_VERSION = 3;
/** Largest maxMessageSize either side may announce (1 GiB, as the option's own limit). */
export const MAX_ANNOUNCED = 1024 * 1024 * 1024;

export interface Hello {
  ipckit: number;
  transport: string;
  codec: string;
  max: number;
  [extra: string]: unknown;
}

export function makeHello(transport: string, codec: string, max: number, extra: Record<string, unknown> = {}): Hello {
  return { ipckit: PROTOCOL_VERSION, transport, codec, max, ...extra };
}

/** Why a listener turned a peer away, in the form the peer's connect() rejects with. */
export class Refusal extends Error {
  readonly errorCode: 'EACCES' | 'EPROTO';
  constructor(errorCode: 'EACCES' | 'EPROTO', message: string) {
    super(message);
    this.errorCode = errorCode;
  }

  get reply(): Record<string, unknown> {
    return { ipckit: PROTOCOL_VERSION, error: this.errorCode, message: this.message };
  }
}

/**
 * Checks a hello received from the peer against this side's expectations;
 * throws a Refusal (listener side: sent back to the peer) naming what differs.
 */
export function checkHello(value: Record<string, unknown>, transport: string, codec: string): Hello {
  if (value.ipckit !== PROTOCOL_VERSION) {
    throw new Refusal('EPROTO', `the peer speaks ipckit channel protocol ${JSON.stringify(value.ipckit ?? value.v ?? 'unknown')}, this side ${PROTOCOL_VERSION}`);
  }
  if (value.transport !== transport) throw new Refusal('EPROTO', `the peer speaks the ${String(value.transport)} transport, this side ${transport}`);
  if (value.codec !== codec) {
    throw new Refusal('EPROTO', `codec mismatch: the peer uses '${String(value.codec)}', this side '${codec}' (both ends must use the same codec)`);
  }
  const max = value.max;
  if (typeof max !== 'number' || !Number.isInteger(max) || max < 1 || max > MAX_ANNOUNCED) {
    throw new Refusal('EPROTO', `the peer announced an impossible maxMessageSize (${JSON.stringify(max)})`);
  }
  return value as Hello;
}

/** The error a connector's connect() rejects with when the listener answered with a refusal. */
function refusedBy(url: string, reply: Record<string, unknown>): Error {
  const message = typeof reply.message === 'string' ? reply.message.slice(0, 500) : 'no reason given';
  if (reply.error === 'EACCES') return Access.refused(url, 'connect', `the listener refused this process: ${message}`);
  return stateError('ERR_IPCKIT_HANDSHAKE', `${url}: the listener refused the handshake: ${message}`);
}

/** Connector side: the listener's answer, checked (a refusal becomes the error connect() rejects with). */
export function checkReply(url: string, reply: Record<string, unknown>, transport: string, codec: string): Hello {
  if (reply.error !== undefined) throw refusedBy(url, reply);
  try {
    return checkHello(reply, transport, codec);
  } catch (e) {
    if (e instanceof Refusal) throw stateError('ERR_IPCKIT_HANDSHAKE', `${url}: ${e.message}`);
    throw e;
  }
}
