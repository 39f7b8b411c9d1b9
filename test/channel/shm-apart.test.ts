// Keeping the two spinning sides of an shm: connection on different CPUs
// (src/channel/shm-apart.ts): the native move changes where the thread runs
// and nothing else (its affinity mask is the one it had), and the peer's word
// can make a side move at most once per interval, whatever the peer writes.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { native } from '../../dist/core/native.js';
import { keepApart } from '../../dist/channel/shm-apart.js';

/** The calling thread's allowed CPUs as the kernel lists them. */
const allowedCpus = () => /Cpus_allowed_list:\s*(\S+)/.exec(readFileSync('/proc/thread-self/status', 'utf8'))![1];
const cpuCount = (list: string) =>
  list.split(',').reduce((n, part) => {
    const [a, b] = part.split('-').map(Number);
    return n + (b === undefined ? 1 : b - a! + 1);
  }, 0);
const oneCpu = cpuCount(allowedCpus()) < 2 && 'this thread may run on one CPU only: there is nowhere to move';

describe('shm: peers kept on different CPUs', () => {
  test('ringLeaveCpu moves the thread off its CPU and leaves its affinity as it was', { skip: oneCpu }, () => {
    const before = allowedCpus();
    const cpu = native.ringCpu();
    assert.ok(cpu >= 0, 'sched_getcpu works');
    assert.equal(native.ringLeaveCpu(cpu), true);
    assert.notEqual(native.ringCpu(), cpu, 'runs on another CPU now');
    assert.equal(allowedCpus(), before, 'the same CPUs allowed as before');
    assert.equal(native.ringLeaveCpu(-1), false, 'no such CPU: nothing changes');
    assert.equal(native.ringLeaveCpu(1 << 20), false);
    assert.equal(allowedCpus(), before);
  });

  test('a side tells its CPU, moves off a spinning peer on the same CPU, and at most once per interval', { skip: oneCpu }, async () => {
    const i32 = new Int32Array(new SharedArrayBuffer(64));
    const OWN = 1;
    const PEER = 2;
    const PEER_SLEEPING = 3;
    // A peer elsewhere: nothing happens, our CPU is told.
    i32[PEER] = 0;
    assert.equal(keepApart(i32, OWN, PEER, PEER_SLEEPING), false);
    assert.ok(i32[OWN]! >= 1, 'our CPU + 1 is written');
    // A sleeping peer on our CPU does not compete for it.
    i32[PEER] = native.ringCpu() + 1;
    i32[PEER_SLEEPING] = 1;
    assert.equal(keepApart(i32, OWN, PEER, PEER_SLEEPING), false);
    // A spinning peer on our CPU (or one that says so): we move, once.
    i32[PEER_SLEEPING] = 0;
    const before = allowedCpus();
    let moves = 0;
    const end = Date.now() + 50;
    while (Date.now() < end) {
      i32[PEER] = native.ringCpu() + 1;
      if (keepApart(i32, OWN, PEER, PEER_SLEEPING)) moves++;
    }
    // 50 ms: the first move at once, then one per 10 ms at most (longer apart after slow moves).
    assert.ok(moves >= 1 && moves <= 6, `${moves} moves in 50 ms`);
    assert.equal(allowedCpus(), before);
  });
});
