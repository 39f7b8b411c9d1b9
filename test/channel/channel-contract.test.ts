// The channel contract holds the same way on every transport, between real
// processes (the peer is test/fixtures/contract-peer.ts):
// - messages a peer sends at once, before this side attached anything, reach
//   the first consumer attached in the tick connect() / the server loop
//   handed the channel over: a 'message' listener, for await, next(),
//   receiveBatch(), onRequest() for requests; switching consumers loses and
//   repeats nothing;
// - a peer killed with SIGKILL mid-stream ends `for await (const m of ch)`
//   without a throw on every transport, with closeInfo { reason: 'peer-lost',
//   error: ERR_IPCKIT_PEER_LOST }, and the docs' server loop goes on.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { channel, type Channel, type ChannelOptions, type CloseInfo } from 'ipckit';
import { fixturesDir, startPeer, type Peer } from '../helpers.js';
import { T, TRANSPORTS, listenExtras, live, servers, transportSkip, urlFor, type Transport } from './channel-pair.js';

/** Messages the peer sends at once on each connection. */
const N = 64;
/** Connections per direction with a 'message' listener (the consumer the early messages used to bypass). */
const REPS = 20;

type Consumer = 'message' | 'for-await' | 'next' | 'receiveBatch' | 'switch' | 'request';
/** One connection each: every other way to consume, and a switch between them. */
const OTHERS: Consumer[] = ['for-await', 'next', 'receiveBatch', 'switch', 'request'];

interface Outcome {
  got: number[];
  info: CloseInfo | null;
}

/** Resolves once `ch` has closed and this tick's deliveries are done (at once if it closed already). */
function ended(ch: Channel<number>): Promise<void> {
  return new Promise((resolve) => (ch.closeInfo ? setImmediate(resolve) : ch.once('close', () => resolve())));
}

/** Takes up to `count` messages with a 'message' listener (`once` for one) that then removes itself; also stops at the close. */
function listenFor(ch: Channel<number>, got: number[], count: number): Promise<void> {
  return new Promise((resolve) => {
    let taken = 0;
    const stop = () => {
      ch.off('message', take);
      ch.off('close', stop);
      resolve();
    };
    const take = (m: number) => {
      got.push(m);
      if (++taken === count) stop();
    };
    if (count === 1) ch.once('message', take);
    else ch.on('message', take);
    if (ch.closeInfo) setImmediate(stop);
    else ch.once('close', stop);
  });
}

/**
 * Consumes what the peer sends with `kind`, attached synchronously (in the
 * caller's tick); resolves with what arrived once the channel has closed.
 */
async function consume(ch: Channel<number>, kind: Consumer): Promise<Outcome> {
  const got: number[] = [];
  if (kind === 'message') {
    ch.on('message', (m) => got.push(m));
    await ended(ch);
  } else if (kind === 'request') {
    ch.onRequest((n) => {
      got.push(n);
      return n + 1;
    });
    await ended(ch);
  } else if (kind === 'for-await') {
    for await (const m of ch) got.push(m);
  } else if (kind === 'next') {
    for (let r = await ch.next(); !r.done; r = await ch.next()) got.push(r.value);
  } else if (kind === 'receiveBatch') {
    for (let b = await ch.receiveBatch(7); b.length > 0; b = await ch.receiveBatch(7)) got.push(...b);
  } else {
    // Three by next(), up to three by receiveBatch(), one by once('message'), ten by a listener, the rest by for await.
    for (let k = 0; k < 3; k++) {
      const r = await ch.next();
      if (!r.done) got.push(r.value);
    }
    got.push(...(await ch.receiveBatch(3)));
    await listenFor(ch, got, 1);
    await listenFor(ch, got, 10);
    for await (const m of ch) got.push(m);
  }
  return { got, info: ch.closeInfo };
}

const expected = Array.from({ length: N }, (_, i) => i);

/** What went wrong in one connection, or null. */
function problem(rep: number, kind: Consumer, o: Outcome): string | null {
  const wrong = o.got.findIndex((m, i) => m !== i);
  if (o.got.length === N && wrong < 0 && o.info?.reason === 'peer-closed') return null;
  return `connection ${rep} (${kind}): ${o.got.length} of ${N} arrived${wrong >= 0 ? `, #${wrong} was ${o.got[wrong]}` : ''}, closed ${o.info?.reason}`;
}

function optionsFor(t: Transport): ChannelOptions<number> {
  return t === 'shm-nospin' ? { codec: 'json', spin: false } : { codec: 'json' };
}

/** The plan's consumers for transport `t`: fifo: carries no requests (one-way). */
function kindsFor(t: Transport): Consumer[] {
  const others = t === 'fifo' ? OTHERS.filter((k) => k !== 'request') : OTHERS;
  return [...Array<Consumer>(REPS).fill('message'), ...others];
}

/** The peer's plan: it sends requests where we answer them, plain messages otherwise. */
function planFor(kinds: Consumer[]): string {
  return JSON.stringify({ count: N, kinds: kinds.map((k) => (k === 'request' ? 'request' : 'message')) });
}

/** The peer's verdicts on its requests' replies, then its { done }. */
async function peerVerdicts(peer: Peer, kinds: Consumer[]): Promise<string[]> {
  const problems: string[] = [];
  for (let k = kinds.filter((x) => x === 'request').length; k > 0; k--) {
    const v = await peer.next<{ rep: number; replies: string }>();
    if (v.replies !== 'ok') problems.push(`connection ${v.rep} (request): the peer got ${v.replies}`);
  }
  assert.deepEqual(await peer.next(), { done: true });
  await peer.exited;
  return problems;
}

/** A pipe: channel to a child started by channel.fork(), which sends at once. */
async function forkPeer(options: ChannelOptions<number>, plan: string) {
  const { child, channel: ch } = await channel.fork<number>(join(fixturesDir, 'contract-peer.js'), ['forked', '', JSON.stringify(options), plan], {
    ...options,
    transport: 'pipe',
    fork: { stdio: ['pipe', 'pipe', 'inherit'] },
  });
  live.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return { child, ch, exited };
}

for (const t of TRANSPORTS) {
  describe(`channel contract over ${t}`, { skip: transportSkip(t) }, () => {
    const options = optionsFor(t);
    const kinds = kindsFor(t);

    test(`a peer that sends ${N} messages as soon as it is connected: all reach the consumer attached in the server loop's tick, in order (${REPS} connections with a 'message' listener, then ${kinds.length - REPS} with the other consumers)`, T, async () => {
      const problems: string[] = [];
      if (t === 'pipe') {
        for (let rep = 0; rep < kinds.length; rep++) {
          const { child, ch, exited } = await forkPeer(options, planFor([kinds[rep]!]));
          const p = problem(rep, kinds[rep]!, await consume(ch, kinds[rep]!));
          if (p) problems.push(p);
          await ch.close();
          await exited;
          live.delete(child);
        }
        return assert.deepEqual(problems, []);
      }
      const server = await channel.listen<number>(urlFor(t), { ...options, ...listenExtras(t) });
      servers.add(server);
      const peer = startPeer('contract-peer', ['connect', server.url, JSON.stringify(options), planFor(kinds)]);
      // A peer that died (it prints why) makes no more connections: fail instead of waiting for one.
      const died = peer.exited.then(({ code, signal }) => Promise.reject(new Error(`the peer exited (${signal ?? code}) before its last connection`)));
      died.catch(() => {});
      const connections = server[Symbol.asyncIterator]();
      for (let rep = 0; rep < kinds.length; rep++) {
        const ch = (await Promise.race([connections.next(), died])).value as Channel<number>;
        const p = problem(rep, kinds[rep]!, await consume(ch, kinds[rep]!));
        if (p) problems.push(p);
        await ch.close();
        peer.send({ next: rep + 1 });
      }
      problems.push(...(await peerVerdicts(peer, kinds)));
      await server.close();
      servers.delete(server);
      assert.deepEqual(problems, []);
    });

    const reverse = t === 'pipe' ? 'pipe: has no listener (channel.fork() makes it)' : t === 'fifo' ? 'fifo: the listening end only reads' : false;
    test(`a listener that sends ${N} messages as soon as it accepted: all reach the consumer attached right after await connect(), in order (${REPS} + ${kinds.length - REPS} connections)`, { ...T, skip: reverse }, async () => {
      const peer = startPeer('contract-peer', ['listen', urlFor(t as Exclude<Transport, 'pipe'>), JSON.stringify({ ...options, ...listenExtras(t) }), planFor(kinds)]);
      const { listening } = await peer.next<{ listening: string }>();
      const problems: string[] = [];
      for (let rep = 0; rep < kinds.length; rep++) {
        const ch = await channel.connect<number>(listening, options);
        const p = problem(rep, kinds[rep]!, await consume(ch, kinds[rep]!));
        if (p) problems.push(p);
        await ch.close();
      }
      problems.push(...(await peerVerdicts(peer, kinds)));
      assert.deepEqual(problems, []);
    });

    test('a client killed with SIGKILL mid-stream: `for await (const m of ch)` ends without a throw, closeInfo says peer-lost with ERR_IPCKIT_PEER_LOST, and the server loop serves the next client', T, async () => {
      /** Reads `ch` as the docs do, without try/catch, and kills the peer after the 1000th message. */
      const readUntilLost = async (ch: Channel<number>, kill: () => void) => {
        let got = 0;
        let closeEvent: CloseInfo | null = null;
        ch.once('close', (info) => (closeEvent = info));
        for await (const m of ch) {
          if (m !== got) throw new Error(`message ${got} arrived as ${m}`);
          if (++got === 1000) kill();
        }
        return { got, info: ch.closeInfo, closeEvent, after: await ch.next() };
      };
      const checkLost = (r: Awaited<ReturnType<typeof readUntilLost>>) => {
        assert.ok(r.got >= 1000, `${r.got} messages before the kill`);
        assert.equal(r.info?.reason, 'peer-lost');
        assert.equal((r.info?.error as { code?: string } | undefined)?.code, 'ERR_IPCKIT_PEER_LOST');
        assert.equal(r.closeEvent, r.info, "the 'close' event carries closeInfo");
        assert.deepEqual(r.after, { value: undefined, done: true });
      };
      const stream = JSON.stringify({ count: 0, kinds: ['stream'] });
      if (t === 'pipe') {
        const { child, ch, exited } = await forkPeer(options, stream);
        checkLost(await readUntilLost(ch, () => child.kill('SIGKILL')));
        await exited;
        live.delete(child);
        return;
      }
      const server = await channel.listen<number>(urlFor(t), { ...options, ...listenExtras(t) });
      servers.add(server);
      const victim = startPeer('contract-peer', ['connect', server.url, JSON.stringify(options), stream]);
      let next: Peer | null = null;
      const served: Array<Awaited<ReturnType<typeof readUntilLost>>> = [];
      // The server loop of the docs: no try/catch around the channel's loop.
      for await (const ch of server) {
        served.push(await readUntilLost(ch, () => victim.child.kill('SIGKILL')));
        if (served.length === 2) break;
        next = startPeer('contract-peer', ['connect', server.url, JSON.stringify(options), JSON.stringify({ count: 10, kinds: ['message'] })]);
      }
      checkLost(served[0]!);
      assert.equal(served[1]!.got, 10);
      assert.equal(served[1]!.info?.reason, 'peer-closed');
      assert.deepEqual(await next!.next(), { done: true });
      await Promise.all([victim.exited, next!.exited]);
      await server.close();
      servers.delete(server);
    });
  });
}
