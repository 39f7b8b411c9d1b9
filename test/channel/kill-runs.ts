// SIGKILL of a channel peer at random points, per transport: a listener in
// this process, a peer process (fixtures/kill-peer.ts) that streams
// numbered, checksummed messages and requests, killed after a seeded random
// delay. Used by test/channel/channel-kill.test.ts (npm test, a few runs) and
// test/stress/channel-kill.stress.ts (many).
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { test } from 'node:test';
import { randomBytes } from 'node:crypto';
import { channel, type Channel, type CloseInfo } from 'ipckit';
import { checkFrame } from '../fixtures/kill-frames.js';
import { startPeer } from '../helpers.js';
import { fuzzSeed, mulberry32, openFds } from './shm-fuzz.js';

export const KILL_TRANSPORTS = ['shm', 'shm-shared', 'unix', 'unix-abstract', 'tcp', 'mq', 'sysvmq', 'unix-seqpacket'] as const;
export type KillTransport = (typeof KILL_TRANSPORTS)[number];

/** How long the listener's channel may take to close after its peer was killed. */
export const CLOSE_BOUND_MS = 2000;

function urlFor(t: KillTransport): string {
  const tag = `${process.pid}-${randomBytes(4).toString('hex')}`;
  switch (t) {
    case 'shm':
    case 'shm-shared':
      return `shm:ipckit-test-kill-${tag}`;
    case 'unix':
      return `unix:${join(tmpdir(), `ipckit-test-kill-${tag}.sock`)}`;
    case 'unix-abstract':
      return `unix-abstract:ipckit-test-kill-${tag}`;
    case 'tcp':
      return 'tcp://127.0.0.1:0';
    case 'mq':
      return `mq:/ipckit-test-kill-${tag}`;
    case 'sysvmq':
      return `sysvmq:ipckit-test-kill-${tag}`;
    case 'unix-seqpacket':
      return `unix-seqpacket:${join(tmpdir(), `ipckit-test-kill-${tag}.sock`)}`;
  }
}

function listDir(dir: string): string[] {
  try {
    return readdirSync(dir).map((n) => `${dir}/${n}`);
  } catch {
    return [];
  }
}

/** System V message queues: id -> the pids of the last send and receive. */
function sysvQueues(): Map<string, number[]> {
  const out = new Map<string, number[]>();
  try {
    for (const line of readFileSync('/proc/sysvipc/msg', 'utf8').trim().split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      out.set(`sysv-msg id=${f[1]}`, [Number(f[5]), Number(f[6])]);
    }
  } catch {}
  return out;
}

/** The kernel objects a channel could leave behind: POSIX shm and queues by name, System V queues by id. */
function kernelObjects(): { names: Set<string>; sysv: Map<string, number[]> } {
  return { names: new Set([...listDir('/dev/shm'), ...listDir('/dev/mqueue')]), sysv: sysvQueues() };
}

/**
 * Objects present now that were not `before` and that are ours: a name with
 * one of `pids` in it (an mq: connector names its queues
 * /ipckit-mq-PID-...), or a System V queue last used by one of `pids` (or
 * never used). Other test runs on the machine make objects too.
 */
function newObjects(before: ReturnType<typeof kernelObjects>, pids: Set<number>): string[] {
  const now = kernelObjects();
  const names = [...now.names].filter((n) => !before.names.has(n) && [...pids].some((pid) => n.includes(`-${pid}-`)));
  const sysv = [...now.sysv].filter(([id, [ls, lr]]) => !before.sysv.has(id) && (pids.has(ls!) || pids.has(lr!) || (ls === 0 && lr === 0))).map(([id]) => id);
  return [...names, ...sysv];
}

export interface KillReport {
  transport: KillTransport;
  seed: number;
  runs: number;
  /** Close reasons of the listener's channels. */
  reasons: Record<string, number>;
  /** Frames received in order and whole, over all runs. */
  frames: number;
  /** Runs in which the peer had sent everything before it was killed. */
  finished: number;
  /** Longest time from the kill to the listener's close event, in ms (runs whose channel was still open at the kill). */
  maxCloseMs: number;
  problems: string[];
  fdBefore: number;
  fdAfter: number;
  leaked: string[];
  ms: number;
}

/**
 * `runs` times: a peer connects over `transport`, streams up to a random
 * number of frames (seeded), and is killed with SIGKILL after a random delay
 * of 0..40 ms. The listener's channel must close with 'peer-lost' (or
 * 'peer-closed' if the peer had finished) within CLOSE_BOUND_MS, every frame
 * received must be the next one and whole, and when all is closed no
 * descriptor or kernel object is left.
 */
export async function killRuns(transport: KillTransport, runs: number, seed: number, log?: (line: string) => void): Promise<KillReport> {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  const report: KillReport = { transport, seed, runs: 0, reasons: {}, frames: 0, finished: 0, maxCloseMs: 0, problems: [], fdBefore: 0, fdAfter: 0, leaked: [], ms: 0 };
  const t0 = performance.now();
  const before = kernelObjects();
  report.fdBefore = openFds();
  const pids = new Set<number>([process.pid]);
  const shared = transport === 'shm-shared';
  const options = { codec: 'raw' as const, maxMessageSize: 2048 };
  const server = await channel.listen<Buffer>(urlFor(transport), { ...options, ...(shared ? { sharedRing: true } : {}) });
  // The listener's side of each connection, handlers attached as it is accepted (before any frame can arrive).
  let onChannel: ((ch: Channel<Buffer>) => void) | null = null;
  server.on('connection', (ch: Channel<Buffer>) => {
    if (onChannel) onChannel(ch);
    else {
      report.problems.push('a connection nobody expected');
      void ch.close();
    }
  });
  try {
    for (let run = 0; run < runs; run++) {
      const count = rnd() < 0.5 ? 1 + int(2000) : 2000 + int(50_000);
      const delayMs = rnd() * 40;
      const where = `${transport} run ${run} (seed ${seed}, ${count} frames, kill after ${delayMs.toFixed(1)} ms)`;
      const accepted = new Promise<Channel<Buffer>>((resolve) => (onChannel = resolve));
      const peer = startPeer('kill-peer', [server.url, JSON.stringify(options), String(count)]);
      pids.add(peer.child.pid!);
      const [ch, ready] = await Promise.all([accepted, peer.next<{ ready?: boolean }>()]);
      onChannel = null;
      if (!ready.ready) throw new Error(`${where}: the peer did not start: ${JSON.stringify(ready)}`);
      let next = 0;
      let problem: string | null = null;
      const check = (b: Buffer) => {
        if (problem) return;
        problem = checkFrame(b, next);
        if (!problem) next++;
      };
      ch.on('message', check);
      ch.onRequest((b: Buffer) => {
        check(b);
        return Buffer.from(`ok ${b.length >= 4 ? b.readUInt32LE(0) : -1}`);
      });
      let killedAt = 0;
      const closed = new Promise<{ info: CloseInfo; at: number }>((resolve) => {
        const done = (info: CloseInfo) => resolve({ info, at: performance.now() });
        if (ch.closeInfo) done(ch.closeInfo);
        else ch.once('close', done);
      });
      const peerDone = peer.next<{ done?: number }>().catch(() => ({}) as { done?: number });
      peer.send('go');
      await new Promise((r) => setTimeout(r, delayMs));
      killedAt = performance.now();
      const wasOpen = !ch.closeInfo;
      peer.child.kill('SIGKILL');
      let timer: NodeJS.Timeout | undefined;
      const outcome = await Promise.race([closed, new Promise<null>((r) => (timer = setTimeout(() => r(null), CLOSE_BOUND_MS)))]);
      clearTimeout(timer);
      await peer.exited;
      const finished = (await peerDone).done === count;
      if (finished) report.finished++;
      report.runs++;
      if (outcome === null) {
        report.problems.push(`${where}: the channel was still open ${CLOSE_BOUND_MS} ms after the kill`);
        await ch.close();
        continue;
      }
      const reason = outcome.info.reason === 'error' ? `error:${(outcome.info.error as { code?: string }).code}` : outcome.info.reason;
      report.reasons[reason] = (report.reasons[reason] ?? 0) + 1;
      if (wasOpen) report.maxCloseMs = Math.max(report.maxCloseMs, outcome.at - killedAt);
      if (reason !== 'peer-lost' && reason !== 'peer-closed') report.problems.push(`${where}: closed with ${reason}${outcome.info.error ? ` (${outcome.info.error.message})` : ''}`);
      if (reason === 'peer-closed' && next !== count) report.problems.push(`${where}: peer-closed after ${next} of ${count} frames`);
      if (finished && next !== count) report.problems.push(`${where}: the peer sent all ${count} frames, ${next} arrived`);
      if (problem) report.problems.push(`${where}: ${problem}`);
      report.frames += next;
    }
  } finally {
    await server.close();
  }
  // Descriptors close with their handles (some a turn later); System V queues are removed by the listener as channels end.
  const end = performance.now() + 2000;
  while ((openFds() > report.fdBefore || newObjects(before, pids).length > 0) && performance.now() < end) await new Promise((r) => setTimeout(r, 5));
  report.fdAfter = openFds();
  report.leaked = newObjects(before, pids);
  report.ms = performance.now() - t0;
  log?.(
    `${transport}: ${report.runs} runs in ${(report.ms / 1000).toFixed(1)} s; closes ${JSON.stringify(report.reasons)}; ${report.finished} peers had finished; ` +
      `${report.frames} frames checked; slowest close after a kill ${report.maxCloseMs.toFixed(1)} ms; fds ${report.fdBefore} -> ${report.fdAfter}`,
  );
  return report;
}

/** What every transport's runs must show. */
export function assertKillReport(r: KillReport, runs: number): void {
  assert.deepEqual(r.problems, [], `${r.transport} (seed ${r.seed})`);
  assert.deepEqual(r.leaked, [], `${r.transport}: kernel objects left behind (seed ${r.seed})`);
  assert.ok(r.fdAfter <= r.fdBefore, `${r.transport}: descriptors ${r.fdBefore} before, ${r.fdAfter} after (seed ${r.seed})`);
  assert.equal(r.runs, runs);
}

/** IPCKIT_KILL_RUNS if set, otherwise `fallback`. */
export function killCount(fallback: number): number {
  const env = process.env.IPCKIT_KILL_RUNS;
  if (env === undefined || env === '') return fallback;
  const n = Number(env);
  if (!Number.isInteger(n) || n < 1) throw new Error(`IPCKIT_KILL_RUNS must be a positive integer, got ${env}`);
  return n;
}

/** One test per transport: `runs` peers (IPCKIT_KILL_RUNS overrides) killed at random points while streaming. */
export function killTests(defaultRuns: number, timeout: number): void {
  const seed = fuzzSeed();
  const runs = killCount(defaultRuns);
  KILL_TRANSPORTS.forEach((transport, k) => {
    test(`channel over ${transport}: ${runs} peers killed (SIGKILL) at random points while streaming: peer-lost within 2 s, frames before it in order and whole, nothing leaked`, { timeout }, async (t) => {
      const s = (seed + k) >>> 0;
      t.diagnostic(`seed ${s} (IPCKIT_FUZZ_SEED=${seed} replays it)`);
      assertKillReport(await killRuns(transport, runs, s, (line) => t.diagnostic(line)), runs);
    });
  });
}
