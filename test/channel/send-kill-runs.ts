// SIGKILL of a sender at random moments, per transport: what a resolved
// send() promises. A sender process (fixtures/send-kill-peer.ts) awaits each
// send() and, after each resolves, records the count where its death cannot
// undo it (a file, written with write(2)). The receiver here reads slowly or
// not at all, so the transport fills and sends wait; the sender is killed
// after a seeded random delay. Every message whose send() had resolved must
// arrive, in order and whole: a resolved send() means the frame is in the
// kernel (socket buffer, message queue) or in the shm: ring, never only in
// the sender's memory. Used by test/channel/channel-send-kill.test.ts (npm test, a
// few runs) and test/stress/channel-send-kill.stress.ts (many).
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { channel, type Channel, type ChannelOptions, type ChannelServer } from 'ipckit';
import { TRANSPORTS, control, listenExtras, urlFor, type Transport } from './channel-pair.js';
import { checkSendKillFrame } from '../fixtures/kill-frames.js';
import { fixturesDir, startPeer } from '../helpers.js';
import { test } from 'node:test';
import { killCount } from './kill-runs.js';
import { fuzzSeed, mulberry32 } from './shm-fuzz.js';

const SEND_KILL_TRANSPORTS = TRANSPORTS;

export interface SendKillReport {
  runs: number;
  /** Runs in which messages whose send() had resolved never arrived, and how many in all. */
  lossyRuns: number;
  lost: number;
  /** Resolved sends over all runs, and messages received. */
  resolved: number;
  received: number;
  problems: string[];
}

interface Sender {
  ch: Channel<Buffer>;
  kill(): Promise<void>;
}

async function startSender(t: Transport, server: ChannelServer<Buffer> | null, options: ChannelOptions<Buffer>, countFile: string): Promise<Sender> {
  const peerOptions = t === 'shm-nospin' ? { ...options, spin: false } : options;
  if (t === 'pipe') {
    const { child, channel: ch } = await channel.fork<Buffer>(join(fixturesDir, 'send-kill-peer.js'), ['forked', '', JSON.stringify(peerOptions), countFile], {
      ...options,
      transport: 'pipe',
      fork: { stdio: ['pipe', 'pipe', 'inherit'] },
    });
    const peer = control(child);
    await peer.next();
    peer.send('go');
    return { ch, kill: async () => void (child.kill('SIGKILL'), await peer.exited) };
  }
  const accepted = new Promise<Channel<Buffer>>((resolve) => server!.once('connection', resolve));
  const peer = startPeer('send-kill-peer', ['connect', server!.url, JSON.stringify(peerOptions), countFile]);
  const [ch, ready] = await Promise.all([accepted, peer.next<{ ready?: boolean }>()]);
  if (!ready.ready) throw new Error(`the sender did not start: ${JSON.stringify(ready)}`);
  peer.send('go');
  return { ch, kill: async () => void (peer.child.kill('SIGKILL'), await peer.exited) };
}

/**
 * `runs` senders over transport `t`, each killed after 5..80 ms (seeded);
 * the receiver either stalls until the kill (the transport fills up and the
 * sender's sends wait) or reads in batches with pauses of up to 4 ms.
 */
export async function sendKillRuns(t: Transport, runs: number, seed: number): Promise<SendKillReport> {
  const rnd = mulberry32(seed);
  const report: SendKillReport = { runs: 0, lossyRuns: 0, lost: 0, resolved: 0, received: 0, problems: [] };
  const options: ChannelOptions<Buffer> = { codec: 'raw', maxMessageSize: 8000, highWaterMark: 16 };
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-send-kill-'));
  const countFile = join(dir, 'count');
  const server = t === 'pipe' ? null : await channel.listen<Buffer>(urlFor(t), { ...options, ...listenExtras(t) });
  try {
    for (let run = 0; run < runs; run++) {
      const stall = rnd() < 0.5;
      const delayMs = 5 + rnd() * 75;
      const where = `run ${run} (seed ${seed}, ${stall ? 'receiver stalled' : 'slow receiver'}, kill after ${delayMs.toFixed(1)} ms)`;
      writeFileSync(countFile, Buffer.alloc(4));
      const sender = await startSender(t, server, options, countFile);
      const ch = sender.ch;
      let next = 0;
      let problem: string | null = null;
      const read = async () => {
        for (;;) {
          const batch = await ch.receiveBatch();
          if (batch.length === 0) return;
          for (const b of batch) {
            if (problem) continue;
            problem = checkSendKillFrame(b, next);
            if (!problem) next++;
          }
          if (!stall) await new Promise((r) => setTimeout(r, rnd() * 4));
        }
      };
      let reading: Promise<void> | null = stall ? null : read();
      await new Promise((r) => setTimeout(r, delayMs));
      await sender.kill();
      const resolved = readFileSync(countFile).readUInt32LE(0);
      reading ??= read();
      await reading;
      await ch.close();
      report.runs++;
      report.resolved += resolved;
      report.received += next;
      if (problem) report.problems.push(`${where}: ${problem}`);
      if (next < resolved) {
        report.lossyRuns++;
        report.lost += resolved - next;
        report.problems.push(`${where}: ${resolved} sends had resolved, ${next} messages arrived`);
      }
    }
  } finally {
    await server?.close();
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

/** One test per transport: `runs` senders (IPCKIT_KILL_RUNS overrides) killed at random moments, nothing resolved lost. */
export function sendKillTests(defaultRuns: number, timeout: number): void {
  const seed = fuzzSeed();
  const runs = killCount(defaultRuns);
  SEND_KILL_TRANSPORTS.forEach((transport, k) => {
    test(`channel over ${transport}: ${runs} senders killed (SIGKILL) at random moments: every message whose send() resolved arrives, in order`, { timeout }, async (t) => {
      const s = (seed + k) >>> 0;
      const r = await sendKillRuns(transport, runs, s);
      t.diagnostic(`seed ${s} (IPCKIT_FUZZ_SEED=${seed} replays it): ${r.resolved} sends resolved, ${r.received} messages received; ${r.lost} lost in ${r.lossyRuns} of ${r.runs} runs`);
      assert.deepEqual(r.problems, []);
      assert.equal(r.runs, runs);
    });
  });
}
