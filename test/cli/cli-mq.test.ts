// `ipckit mq ...` and the message-queue sections of `ipckit ls`, run as real
// processes against real queues, checked against the library.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { mq } from 'ipckit';
import { has, namespaceDenied, uniqueKey, uniqueName, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function ipckit(args: string[], input: Uint8Array | string = ''): Promise<Result> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(input);
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}

async function ok(args: string[], input?: Uint8Array | string): Promise<Buffer> {
  const r = await ipckit(args, input);
  assert.equal(r.code, 0, `ipckit ${args.join(' ')} failed: ${r.stderr}`);
  assert.equal(r.stderr, '');
  return r.stdout;
}

/** Exit status 1 when the operation fails, 2 for a usage error (then a hint follows the message). */
async function fails(args: string[], message: RegExp, status = 1): Promise<void> {
  const r = await ipckit(args);
  assert.equal(r.code, status, `ipckit ${args.join(' ')} should fail with status ${status}: ${r.stderr}`);
  assert.match(r.stderr, /^ipckit: /);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
}

const json = async <J = any>(args: string[]): Promise<J> => JSON.parse((await ok(args)).toString()) as J;

const names = removedAfter<string>((n) => mq.unlink(n));
const ids = removedAfter<number>((id) => mq.sysv.fromId(id).remove());

describe('ipckit mq', () => {
  test('POSIX: create, send with priorities, recv highest first, stat, ls, rm', T, async () => {
    const n = uniqueName('cli');
    names.add(n);
    await ok(['mq', 'create', n, '--max-messages', '6', '--message-size', '1k', '--mode', '640']);
    await ok(['mq', 'send', n, '--priority', '1', '--data', 'one']);
    await ok(['mq', 'send', n, '--priority', '9'], 'nine from stdin');
    const bytes = randomBytes(300);
    await ok(['mq', 'send', n, '--priority', '5'], bytes);
    const st = await json(['mq', 'stat', n, '--json']);
    assert.deepEqual([st.maxMessages, st.messageSize, st.currentMessages, st.mode], [6, 1024, 3, '0640']);
    const row = (await json<Array<{ kind: string; name: string; messages: number; size: number }>>(['ls', '--json', 'posix-mq'])).find((r) => r.name === n);
    assert.deepEqual(row && [row.kind, row.messages, row.size], ['posix-mq', 3, 3 + 15 + 300]);
    assert.deepEqual(await json(['mq', 'recv', n, '--json']), { priority: 9, size: 15, encoding: 'utf8', data: 'nine from stdin' });
    assert.deepEqual(await ok(['mq', 'recv', n]), bytes, 'binary-safe stdout');
    assert.equal((await ok(['mq', 'recv', n])).toString(), 'one');
    await fails(['mq', 'recv', n, '--timeout', '50'], /ETIMEDOUT/);
    await fails(['mq', 'recv', n, '--nowait'], /EAGAIN.*empty/);
    await fails(['mq', 'send', n, '--data', 'x'.repeat(1025)], /EMSGSIZE.*message size.*1024/);
    await fails(['mq', 'send', n, '--type', '3', '--data', 'x'], /--type is for System V/, 2);
    await ok(['mq', 'rm', n]);
    await fails(['mq', 'stat', n], /ENOENT/);
  });

  test('System V: create private, send types, recv by type/-type/--except, stat, ls, rm', T, async () => {
    const id = Number((await ok(['mq', 'create', 'private'])).toString());
    ids.add(id);
    for (const t of [3, 1, 5]) await ok(['mq', 'send', `id:${id}`, '--type', String(t), '--data', `t${t}`]);
    const st = await json(['mq', 'stat', `id:${id}`, '--json']);
    assert.deepEqual([st.kind, st.qnum, st.cbytes, st.key, st.lspid > 0], ['sysv-mq', 3, 6, '0x00000000', true]);
    const row = (await json<Array<{ kind: string; id: number; messages: number }>>(['ls', '--json', 'sysv-mq'])).find((r) => r.id === id);
    assert.equal(row?.messages, 3);
    assert.deepEqual(await json(['mq', 'recv', `id:${id}`, '--type', '-4', '--json']), { type: 1, size: 2, encoding: 'utf8', data: 't1' });
    assert.deepEqual(await json(['mq', 'recv', `id:${id}`, '--type', '3', '--except', '--json']), { type: 5, size: 2, encoding: 'utf8', data: 't5' });
    assert.equal((await ok(['mq', 'recv', `id:${id}`])).toString(), 't3');
    await fails(['mq', 'recv', `id:${id}`, '--nowait'], /ENOMSG/);
    await fails(['mq', 'recv', `id:${id}`, '--timeout', '30'], /ETIMEDOUT/);
    await ok(['mq', 'rm', `id:${id}`]);
    await fails(['mq', 'stat', `id:${id}`], /no System V queue has this id/);
  });

  test('System V by key: ipckit mq and the library meet on the same queue', T, async () => {
    const key = uniqueKey();
    const hex = `0x${key.toString(16).padStart(8, '0')}`;
    const id = Number((await ok(['mq', 'create', hex, '--exclusive'])).toString());
    ids.add(id);
    using q = mq.sysv.get(key);
    assert.equal(q.id, id);
    const waiting = q.receive({ type: 7, timeout: 30_000 });
    await ok(['mq', 'send', hex, '--type', '7'], 'via stdin');
    assert.equal((await waiting).data.toString(), 'via stdin');
    await ok(['mq', 'rm', hex]);
  });

  test('ls says when the mqueue filesystem is not mounted, and how to mount it', { ...T, skip: process.getuid?.() !== 0 && 'needs root' }, (t) => {
    const denied = namespaceDenied('-m');
    if (denied) return t.skip(denied);
    // A private mount namespace, so the rest of the system keeps its mount.
    const r = spawnSync('unshare', ['-m', 'sh', '-c', `umount /dev/mqueue 2>/dev/null; "${process.execPath}" "${MAIN}" ls posix-mq`], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /not mounted/);
    assert.match(r.stdout, /mount -t mqueue none \/dev\/mqueue/);
  });
});
