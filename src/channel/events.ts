// The events of channels and channel servers, for typed on()/once()/off().
// Each method has two overloads: a known event takes its listener's type; any
// other name (newListener, a name in a variable...) stays open, but a known
// name never falls through to it, so a wrong listener does not compile.
import type { PeerCredentials } from './access.js';
import type { Channel } from './channel.js';
import type { CloseInfo } from './link.js';

export interface ChannelEvents<Receive> {
  /** A message (with a 'message' listener, messages go there instead of the iterator). */
  message: (message: Receive) => void;
  /** A protocol or system error of this channel; it closes right after. */
  error: (error: Error) => void;
  close: (info: CloseInfo) => void;
}

export interface ChannelServerEvents<Send, Receive> {
  connection: (channel: Channel<Send, Receive>) => void;
  /** A peer that allowUids/allowGids turned away (its connect() got EACCES). */
  refused: (peer: PeerCredentials) => void;
  /** A failed handshake; the server keeps going. */
  error: (error: Error) => void;
}

/** An event name that is none of `Events`' (never for a known one). */
export type OtherEvent<E, Events> = Exclude<E, keyof Events>;

export type AnyListener = (...args: any[]) => void;

/** on(), once(), off()... of an emitter of `Events`, returning the emitter (`This`). */
export interface EventMethod<Events, This> {
  <E extends keyof Events>(event: E, listener: Events[E]): This;
  <E extends string | symbol>(event: OtherEvent<E, Events>, listener: AnyListener): This;
}
