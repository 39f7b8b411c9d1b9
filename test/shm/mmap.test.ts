// mmap of files: shared and private mappings and the pitfalls C programmers meet.
import assert from 'node:assert/strict';
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { IpcError, mmap } from 'ipckit';
import { assertUnknownOption, canDropPrivileges, fixturesDir, startPeer, withoutCapabilities } from '../helpers.js';

const T = { timeout: 60_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-mmap-'));
after(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
function fileWith(content: string | Buffer): string {
  const p = join(dir, `f${n++}`);
  writeFileSync(p, content);
  return p;
}

describe('mmap.file', () => {
  test('a shared mapping writes through to the file and to another process', T, async () => {
    const path = fileWith(Buffer.alloc(8192));
    using map = mmap.file(path);
    assert.equal(map.size, 8192);
    assert.equal(map.shared, true);
    map.write('written via mmap', 10);
    map.sync();
    assert.equal(readFileSync(path).subarray(10, 26).toString(), 'written via mmap');
    const peer = startPeer('shm-peer');
    await peer.next();
    peer.send({ op: 'file', path });
    assert.deepEqual(await peer.next(), { size: 8192 });
    peer.send({ op: 'read', offset: 10, length: 16 });
    assert.deepEqual(await peer.next(), { data: 'written via mmap' });
    peer.send({ op: 'write', offset: 5000, data: 'peer' });
    await peer.next();
    assert.equal(map.read(5000, 4).toString(), 'peer');
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('a private mapping is copy-on-write: the file never changes', T, () => {
    const path = fileWith('original content');
    using map = mmap.file(path, { shared: false });
    map.write('CHANGED');
    assert.equal(map.read(0, 7).toString(), 'CHANGED');
    assert.equal(readFileSync(path, 'utf8'), 'original content');
  });

  test('offset and size select a window of the file', T, () => {
    const content = Buffer.alloc(3 * 4096, 'a');
    content.write('second page', 4096);
    const path = fileWith(content);
    using map = mmap.file(path, { offset: 4096, size: 100 });
    assert.equal(map.size, 100);
    assert.equal(map.offset, 4096);
    assert.equal(map.read(0, 11).toString(), 'second page');
    using rest = mmap.file(path, { offset: 4096 });
    assert.equal(rest.size, 2 * 4096);
  });

  test('create + grow makes and sizes a new file', T, () => {
    const path = join(dir, 'grown');
    using map = mmap.file(path, { create: true, grow: true, size: 10_000 });
    assert.equal(statSync(path).size, 10_000);
    assert.equal(statSync(path).mode & 0o777, 0o600);
    map.write('end', 9997);
    map.sync({ async: true });
    map.sync({ offset: 9000, length: 1000 });
    assert.equal(readFileSync(path).subarray(9997).toString(), 'end');
  });

  test('a read-only mapping refuses writes', T, () => {
    const path = fileWith('read only');
    using map = mmap.file(path, { readOnly: true });
    assert.equal(map.read().toString(), 'read only');
    assert.throws(() => map.write('x'), { code: 'ERR_IPCKIT_READ_ONLY' });
  });

  test('character devices such as /dev/zero map with an explicit size', T, () => {
    using zero = mmap.file('/dev/zero', { size: 4096, shared: false });
    assert.equal(zero.read(0, 4).toString('hex'), '00000000');
    assert.throws(() => mmap.file('/dev/zero'), { code: 'ERR_IPCKIT_INVALID_ARG_VALUE' });
  });
});

describe('mmap.file: the pitfalls', () => {
  test('an empty file cannot be mapped', T, () => {
    const path = fileWith('');
    assert.throws(() => mmap.file(path), { name: 'RangeError', code: 'ERR_IPCKIT_EMPTY_FILE' });
  });

  test('the offset must be a multiple of the page size', T, () => {
    const path = fileWith(Buffer.alloc(8192));
    assert.throws(() => mmap.file(path, { offset: 100 }), { name: 'RangeError', code: 'ERR_IPCKIT_UNALIGNED_OFFSET' });
  });

  test('a mapping past the end of the file is refused (it would raise SIGBUS)', T, () => {
    const path = fileWith('short');
    assert.throws(() => mmap.file(path, { size: 4096 }), { name: 'RangeError', code: 'ERR_IPCKIT_BEYOND_EOF' });
    assert.throws(() => mmap.file(path, { offset: 4096 }), { code: 'ERR_IPCKIT_BEYOND_EOF' });
    assert.equal(readFileSync(path, 'utf8'), 'short', 'file untouched');
  });

  test('a missing file is ENOENT with its path', T, () => {
    const path = join(dir, 'does-not-exist');
    assert.throws(() => mmap.file(path), (e: unknown) => e instanceof IpcError && e.code === 'ENOENT' && e.path === path);
  });

  test('a shared writable mapping needs write permission on the file', { ...T, skip: !canDropPrivileges && 'needs root and setpriv' }, async () => {
    const path = fileWith('locked');
    chmodSync(path, 0o444);
    chownSync(path, 65534, 65534);
    const [cmd, args] = withoutCapabilities(process.execPath, [join(fixturesDir, 'shm-peer.js')]);
    const peer = startPeer(cmd, args);
    await peer.next();
    peer.send({ op: 'file', path });
    assert.equal((await peer.next<{ error: { code: string } }>()).error.code, 'EACCES');
    peer.send({ op: 'file', path, options: { readOnly: true } });
    assert.deepEqual(await peer.next(), { size: 6 }, 'reading is allowed');
    peer.send({ op: 'exit' });
    await peer.exited;
  });

  test('a misspelt option is a TypeError naming the nearest one, and creates nothing', T, async () => {
    const path = fileWith(Buffer.alloc(100));
    const missing = join(dir, 'typo-not-created');
    using map = mmap.file(path);
    const calls: Array<[string, () => unknown, string | null]> = [
      ['file', () => mmap.file(missing, { creat: true, size: 4096 } as never), 'create'],
      ['file', () => mmap.file(path, { grwo: true, size: 4096 } as never), 'grow'],
      ['file', () => mmap.file(path, { private: true } as never), null],
      ['sync', () => map.sync({ asynk: true } as never), 'async'],
    ];
    for (const [label, call, nearest] of calls) await assertUnknownOption(call, nearest, label);
    assert.throws(() => statSync(missing), { code: 'ENOENT' });
    assert.equal(statSync(path).size, 100, 'not grown');
  });

  test('bad sync ranges are RangeErrors', T, () => {
    const path = fileWith(Buffer.alloc(100));
    using map = mmap.file(path);
    assert.throws(() => map.sync({ offset: 200 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
    assert.throws(() => map.sync({ offset: 50, length: 60 }), { code: 'ERR_IPCKIT_OUT_OF_RANGE' });
  });
});
