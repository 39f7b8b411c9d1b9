// A nats:// peer played by hand with the raw NATS client: it speaks the
// handshake (a hello as a request to ipckit.NAME) and then publishes
// whatever a test wants to the listener's private subject, so tests can
// send what no ipckit channel would (a gap in the sequence, a frame too
// long, a lie about credit). Layout of a link message: src/channel/nats-link.ts.
import { randomBytes } from 'node:crypto';
import { connect, type Msg, type NatsConnection } from '@nats-io/transport-node';

const LINK_HEADER = 5;

export interface ForgedNats {
  nc: NatsConnection;
  /** The listener's hello. */
  hello: Record<string, any>;
  /** Messages the listener sent to the forged peer's subject (link header included). */
  received: Uint8Array[];
  /** A link message of `kind` with the next sequence number (or `seq`). */
  message(kind: number, body: Uint8Array, seq?: number): Buffer;
  /** A data message carrying a plain channel message (kind 0) with `payload`. */
  data(payload: Uint8Array): Buffer;
  send(m: Uint8Array): void;
  close(): Promise<void>;
}

export async function forgeNats(url: string, options: { codec?: string; max?: number; window?: number } = {}): Promise<ForgedNats> {
  const u = new URL(url);
  const nc = await connect({ servers: `${u.hostname}:${u.port}` });
  const subject = `_IPCKIT.${randomBytes(16).toString('hex')}`;
  const received: Uint8Array[] = [];
  nc.subscribe(subject, {
    callback: (_e, m: Msg) => {
      if (m.reply) m.respond();
      else received.push(m.data);
    },
  });
  const mine = { ipckit: 3, transport: 'nats', codec: options.codec ?? 'json', max: options.max ?? 1024 * 1024 - 10, subject, window: options.window ?? 4 * 1024 * 1024, frames: 8192 };
  const reply = await nc.request(`ipckit.${u.pathname.slice(1)}`, JSON.stringify(mine), { timeout: 5000 });
  const hello = reply.json<Record<string, any>>();
  let seq = 0;
  const message = (kind: number, body: Uint8Array, at = seq++) => {
    const m = Buffer.alloc(LINK_HEADER + body.length);
    m[0] = kind;
    m.writeUInt32LE(at, 1);
    m.set(body, LINK_HEADER);
    return m;
  };
  return {
    nc,
    hello,
    received,
    message,
    data: (payload) => message(0, Buffer.concat([Buffer.from([0]), payload])),
    send: (m) => nc.publish(hello.subject, m),
    close: async () => {
      await nc.flush();
      await nc.close();
    },
  };
}
