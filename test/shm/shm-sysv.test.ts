// System V shared memory, against ipcmk/ipcs and C peers.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { IpcError, ftok, shm } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, compileC, fixturesDir, has, run, startPeer, uniqueKey, withoutCapabilities, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };
const made = removedAfter<number>((id) => shm.sysv.fromId(id).remove());
function track<S extends { id: number }>(segment: S): S {
  made.add(segment.id);
  return segment;
}

/** The row `ipcs -m` prints for a segment id: key, shmid, owner, perms, bytes, nattch. */
function ipcsRow(id: number): string[] | undefined {
  return run('ipcs', ['-m'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/))
    .find((f) => f[1] === String(id));
}

describe('System V shared memory', () => {
  test('a segment ipckit creates appears in ipcs -m with its key, size and mode', { ...T, skip: !has('ipcs') && 'no ipcs' }, () => {
    const key = uniqueKey();
    using seg = track(shm.sysv.get(key, { create: true, exclusive: true, size: 12345, mode: 0o640 }));
    const row = ipcsRow(seg.id);
    assert.ok(row, 'listed by ipcs');
    assert.equal(row[0], `0x${key.toString(16).padStart(8, '0')}`);
    assert.equal(row[3], '640');
    assert.equal(row[4], '12345');
    seg.remove();
    assert.equal(ipcsRow(seg.id), undefined);
  });

  test('a segment created by ipcmk -M is attached, written by one process and read by another', { ...T, skip: !has('ipcmk') && 'no ipcmk' }, async () => {
    const out = run('ipcmk', ['-M', '8192', '-p', '0600']);
    const id = Number(/(\d+)\s*$/.exec(out.trim())?.[1]);
    made.add(id);
    using seg = shm.sysv.fromId(id);
    assert.equal(seg.stat().size, 8192);
    const buf = seg.attach();
    assert.equal(buf.byteLength, 8192);
    const peer = startPeer('shm-peer');
    await peer.next();
    peer.send({ op: 'sysv', id });
    assert.deepEqual(await peer.next(), { size: 8192 });
    peer.send({ op: 'write', offset: 4000, data: 'written by a peer' });
    await peer.next();
    assert.equal(seg.read(4000, 17).toString(), 'written by a peer');
    assert.equal(seg.stat().nattch, 2);
    peer.send({ op: 'exit' });
    await peer.exited;
    assert.equal(seg.stat().nattch, 1, 'the exited peer detached');
    seg.remove();
  });

  test('stat() reports every shmid_ds field and tracks attaches', T, () => {
    const before = Math.floor(Date.now() / 1000) - 1;
    using seg = track(shm.sysv.get('private', { size: 5000 }));
    let st = seg.stat();
    assert.equal(st.key, 0);
    assert.equal(st.size, 5000);
    assert.equal(st.mode, 0o600);
    assert.equal(st.cpid, process.pid);
    assert.equal(st.uid, process.getuid!());
    assert.equal(st.cuid, process.getuid!());
    assert.equal(st.gid, process.getgid!());
    assert.equal(st.cgid, process.getgid!());
    assert.equal(st.nattch, 0);
    assert.equal(st.atime, null);
    assert.equal(st.dtime, null);
    assert.ok(st.ctime!.getTime() / 1000 >= before);
    assert.equal(st.markedForRemoval, false);
    assert.equal(st.locked, false);
    seg.attach();
    st = seg.stat();
    assert.equal(st.nattch, 1);
    assert.equal(st.lpid, process.pid);
    assert.ok(st.atime instanceof Date);
    seg.detach();
    seg.detach();
    st = seg.stat();
    assert.equal(st.nattch, 0);
    assert.ok(st.dtime instanceof Date);
    seg.set({ mode: 0o644 });
    assert.equal(seg.stat().mode, 0o644);
    seg.remove();
  });

  test('remove() while attached marks the segment; it goes with the last detach', T, () => {
    const seg = shm.sysv.get('private', { size: 4096 });
    const buf = new Uint8Array(seg.attach());
    buf[0] = 9;
    seg.remove();
    assert.equal(seg.stat().markedForRemoval, true);
    assert.equal(buf[0], 9, 'still usable while attached');
    seg.detach();
    assert.throws(() => seg.stat(), (e: unknown) => e instanceof IpcError && (e.code === 'EINVAL' || e.code === 'EIDRM'));
  });

  test('attach again returns the same buffer; a different mode needs detach first', T, () => {
    using seg = track(shm.sysv.get('private', { size: 64 }));
    const a = seg.attach();
    assert.equal(seg.attach(), a);
    assert.throws(() => seg.attach({ readOnly: true }), { code: 'ERR_IPCKIT_ALREADY_ATTACHED' });
    seg.detach();
    const ro = seg.attach({ readOnly: true });
    assert.equal(ro.byteLength, 64);
    assert.throws(() => seg.write('x'), { code: 'ERR_IPCKIT_READ_ONLY' });
    seg.remove();
  });

  test('ftok matches the C library, and get() by that key finds the segment', { ...T, skip: !has('cc') && 'no C compiler' }, () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-ftok-'));
    const file = join(dir, 'anchor');
    writeFileSync(file, '');
    const peer = compileC(`
      #include <stdio.h>
      #include <sys/ipc.h>
      int main(int argc, char **argv) { printf("%d\\n", (int)ftok(argv[1], 'k')); return 0; }
    `);
    try {
      const cKey = Number(run(peer.path, [file]).trim());
      const key = ftok(file, 'k'.charCodeAt(0));
      assert.equal(key, cKey);
      using seg = track(shm.sysv.get(key, { create: true, size: 100 }));
      using same = shm.sysv.get(key);
      assert.equal(same.id, seg.id);
      seg.remove();
    } finally {
      peer.cleanup();
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a C program attached by id sees what ipckit wrote', { ...T, skip: !has('cc') && 'no C compiler' }, () => {
    using seg = track(shm.sysv.get('private', { size: 4096 }));
    seg.attach();
    seg.write('hello C');
    const peer = compileC(`
      #include <stdio.h>
      #include <stdlib.h>
      #include <string.h>
      #include <sys/shm.h>
      int main(int argc, char **argv) {
        char *p = shmat(atoi(argv[1]), NULL, 0);
        if (p == (void *)-1) return 2;
        printf("%s\\n", p);
        strcpy(p + 100, "hello node");
        return shmdt(p);
      }
    `);
    try {
      assert.equal(run(peer.path, [String(seg.id)]).trim(), 'hello C');
      assert.equal(seg.read(100, 10).toString(), 'hello node');
    } finally {
      peer.cleanup();
    }
    seg.remove();
  });
});

describe('System V shared memory: bad input and faults', () => {
  test('keys are validated: 0 must be spelled private, and out-of-range keys are refused', T, () => {
    assert.throws(() => shm.sysv.get(0), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => shm.sysv.get(2 ** 32), { name: 'RangeError', code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => shm.sysv.get('nope' as 'private'), { name: 'TypeError', code: 'ERR_IPCKIT_INVALID_ARG_TYPE' });
  });

  test('sizes are validated and creating needs one', T, () => {
    const key = uniqueKey();
    assert.throws(() => shm.sysv.get(key, { create: true }), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
    assert.throws(() => shm.sysv.get(key, { create: true, size: -5 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => shm.sysv.get(key, { create: true, size: 0 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });

  test('a missing key without create is ENOENT; exclusive on an existing key is EEXIST', T, () => {
    const key = uniqueKey();
    assert.throws(() => shm.sysv.get(key), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT' && e.key === (key | 0));
    using seg = track(shm.sysv.get(key, { create: true, size: 10 }));
    assert.throws(() => shm.sysv.get(key, { create: true, exclusive: true, size: 10 }), (e: unknown) => e instanceof IpcError && e.code === 'EEXIST');
    assert.throws(() => shm.sysv.get(key, { size: 20 }), { code: 'ERR_IPCKIT_SIZE_MISMATCH' });
    seg.remove();
  });

  const shmmax = Number(readFileSync('/proc/sys/kernel/shmmax', 'utf8').trim());
  test('a segment larger than shmmax names the limit', { ...T, skip: !(shmmax < Number.MAX_SAFE_INTEGER) && 'shmmax is unlimited here' }, () => {
    const max = shmmax;
    assert.throws(() => shm.sysv.get('private', { size: max + 1 }), (e: unknown) => e instanceof IpcError && e.limit?.name === '/proc/sys/kernel/shmmax');
  });

  test('a misspelt option is a TypeError naming the nearest one', T, async () => {
    const key = uniqueKey();
    using seg = track(shm.sysv.get('private', { size: 64 }));
    const calls: Array<[string, () => unknown, string | null]> = [
      ['get', () => shm.sysv.get(key, { create: true, sise: 64 } as never), 'size'],
      ['get', () => shm.sysv.get(key, { create: true, size: 64, exlusive: true } as never), 'exclusive'],
      ['attach', () => seg.attach({ readonly: true } as never), 'readOnly'],
      ['set', () => seg.set({ mod: 0o600 } as never), 'mode'],
      ['set', () => seg.set({ owner: 0 } as never), null],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.throws(() => shm.sysv.get(key), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT', 'nothing created');
    assert.equal(seg.attached, false);
    seg.remove();
  });

  test('an unknown id is EINVAL', T, () => {
    assert.throws(() => shm.sysv.fromId(0x7ffffff0), (e: unknown) => e instanceof IpcError && e.code === 'EINVAL' && e.id === 0x7ffffff0);
  });

  test('permission denied for a 0o600 segment owned by another user', { ...T, skip: !(canDropPrivileges && has('ipcmk')) && 'needs root, setpriv and ipcmk' }, async () => {
    // System V grants owner rights to the creator as well as the owner, so the
    // segment must be created by the other user (nobody) for the check to bite.
    const out = run('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'ipcmk', '-M', '4096', '-p', '0600']);
    const id = Number(/(\d+)\s*$/.exec(out.trim())?.[1]);
    made.add(id);
    const [cmd, args] = withoutCapabilities(process.execPath, [join(fixturesDir, 'shm-peer.js')]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'sysv', id });
    const reply = await peer.next<{ error?: { code: string } }>();
    assert.equal(reply.error?.code, 'EACCES');
    peer.send({ op: 'exit' });
    await peer.exited;
    shm.sysv.fromId(id).remove();
  });
});
