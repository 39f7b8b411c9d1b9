// The errors a Channel's calls reject with: closed, peer lost, one-way
// misuse, loans without the raw codec; and what the parts a Channel is made
// of (outbox, inbox, loans, requests) read of its state.
import { stateError } from '../core/errors.js';
import type { CloseInfo, Link } from './link.js';

/** What the parts of a Channel read of its state (the Channel's own getters). */
export interface ChannelState {
  /** Null while open; then why it closed. */
  readonly closeInfo: CloseInfo | null;
  /** close() was called or the channel is closed. */
  readonly closed: boolean;
}

export function closedError(info: CloseInfo | null): Error {
  const why = info ? ` (${info.reason}${info.error ? `: ${info.error.message}` : ''})` : '';
  const err = stateError(info?.reason === 'peer-lost' ? 'ERR_IPCKIT_PEER_LOST' : 'ERR_IPCKIT_CLOSED', `channel is closed${why}`);
  if (info?.error) (err as Error).cause = info.error;
  return err;
}

/**
 * A lost peer's close, the same on every transport: ERR_IPCKIT_PEER_LOST,
 * with what the transport saw (ECONNRESET, ETIMEDOUT...) as its cause.
 */
export function peerLost(info: CloseInfo, transport: string): CloseInfo {
  const seen = info.error;
  if ((seen as { code?: unknown } | undefined)?.code === 'ERR_IPCKIT_PEER_LOST') return info;
  const error = stateError('ERR_IPCKIT_PEER_LOST', `the ${transport}: peer went away without closing (killed or crashed)${seen ? `: ${seen.message}` : ''}`);
  if (seen) (error as Error).cause = seen;
  return { reason: 'peer-lost', error };
}

/** Misuse of a one-way channel (fifo:): the error says which end can do what. */
export function oneWayError(link: Link, what: string, code: 'ERR_IPCKIT_READ_ONLY' | 'ERR_IPCKIT_WRITE_ONLY' | 'ERR_IPCKIT_ONE_WAY' = 'ERR_IPCKIT_ONE_WAY'): Error {
  const end = link.direction === 'send' ? 'the writing end (send only)' : 'the reading end (receive only)';
  const why = code === 'ERR_IPCKIT_ONE_WAY' ? 'needs both directions' : 'is not possible here';
  return stateError(code, `${what}() ${why}: this ${link.transport}: channel is one-way and this is ${end}`);
}

/**
 * loan()/publish() send bytes as they are, past the codec: a peer whose
 * codec is not raw could not decode them and would fail the channel.
 */
export function notRawError(what: string, codecName: string): Error {
  return stateError('ERR_IPCKIT_CODEC', `${what}() sends bytes as they are, which needs codec 'raw' at both ends; this channel's codec is ${codecName} (use send())`);
}
