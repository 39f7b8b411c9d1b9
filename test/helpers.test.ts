// The test helpers themselves: a peer that ends without answering makes
// next() reject with how it ended, instead of leaving the test to its watchdog.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startPeer } from './helpers.js';

const T = { timeout: 20_000 };

describe('startPeer', () => {
  test('next() gives the lines a peer printed before it exited, then rejects naming the exit code', T, async () => {
    const peer = startPeer('sh', ['-c', 'echo \'{"a":1}\'; exit 3']);
    assert.deepEqual(await peer.next(), { a: 1 });
    await assert.rejects(peer.next(), /peer sh exited with code 3 before answering/);
    assert.deepEqual(await peer.exited, { code: 3, signal: null });
  });

  test('a killed peer: next() rejects naming the signal', T, async () => {
    const peer = startPeer('sh', ['-c', 'echo \'{"ready":true}\'; read line']);
    assert.deepEqual(await peer.next(), { ready: true });
    const pending = peer.next();
    peer.child.kill('SIGKILL');
    await assert.rejects(pending, /peer sh was killed by SIGKILL before answering/);
  });

  test('a peer that exits while another process holds its output: next() still rejects, naming the exit code', T, async () => {
    const peer = startPeer('sh', ['-c', 'sleep 30 & echo "{\\"pid\\":$!}"; exit 4']);
    const { pid } = await peer.next<{ pid: number }>();
    try {
      await assert.rejects(peer.next(), /peer sh exited with code 4 before answering \(its output is still held open by another process\)/);
    } finally {
      process.kill(pid, 'SIGKILL');
    }
  });

  test('a peer that keeps running is waited for: it answers when asked', T, async () => {
    const peer = startPeer('sh', ['-c', 'read line; echo "$line"; cat >/dev/null']);
    peer.send({ echo: 2 });
    assert.deepEqual(await peer.next(), { echo: 2 });
    peer.child.stdin!.end();
    assert.deepEqual(await peer.exited, { code: 0, signal: null });
  });
});
