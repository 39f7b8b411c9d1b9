// What the sync tests share: named objects and peers made through these
// helpers are removed (peers killed) after the test file that made them.
import assert from 'node:assert/strict';
import { after } from 'node:test';
import { sem, shm, type SysvSemaphoreSet } from 'ipckit';
import { startPeer, uniqueName, type Peer } from '../helpers.js';

export const T = { timeout: 60_000 };
const shmNames = new Set<string>();
const semNames = new Set<string>();
export const sets = new Set<SysvSemaphoreSet>();
export const peers = new Set<Peer>();

export function region(tag: string, size = 4096) {
  const n = uniqueName(tag);
  shmNames.add(n);
  return { name: n, region: shm.open(n, { create: true, exclusive: true, size }) };
}
export function semName(tag: string): string {
  const n = uniqueName(tag);
  semNames.add(n);
  return n;
}
export function sysvSet(count: number, key: number | 'private' = 'private') {
  const s = sem.sysv.get(key, { create: true, exclusive: key !== 'private', count });
  sets.add(s);
  return s;
}
export async function peer(): Promise<Peer> {
  const p = startPeer('sync-peer');
  peers.add(p);
  const hello = await p.next();
  assert.equal(hello.ready, true);
  return p;
}
export async function ask<T = Record<string, any>>(p: Peer, message: unknown): Promise<T> {
  p.send(message);
  const reply = await p.next<T & { error?: unknown }>();
  if ((reply as { error?: unknown }).error) throw new Error(`peer failed: ${JSON.stringify((reply as { error?: unknown }).error)}`);
  return reply;
}

after(async () => {
  for (const p of peers) {
    if (p.child.exitCode === null && p.child.signalCode === null) p.child.kill('SIGKILL');
    await p.exited;
  }
  for (const n of shmNames) {
    try {
      shm.unlink(n);
    } catch {
      /* already gone */
    }
  }
  for (const n of semNames) {
    try {
      sem.unlink(n);
    } catch {
      /* already gone */
    }
  }
  for (const s of sets) {
    try {
      s.remove();
    } catch {
      /* already gone */
    }
  }
});
