// `ipckit fifo ...` and `ipckit ls --path` for FIFOs and Unix sockets, run as real processes.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import { fifo, unix } from 'ipckit';

const T = { timeout: 60_000 };
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'ipckit-cli-fifo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Result {
  code: number | null;
  stdout: string;
  stderr: string;
}

function ipckit(args: string[], input?: string): { done: Promise<Result>; pid: number } {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  child.stdin.end(input ?? '');
  const done = once(child, 'close').then(([code]) => ({ code: code as number | null, stdout, stderr }));
  return { done, pid: child.pid! };
}

async function ok(args: string[], input?: string): Promise<string> {
  const r = await ipckit(args, input).done;
  assert.equal(r.code, 0, `ipckit ${args.join(' ')} failed: ${r.stderr}`);
  assert.equal(r.stderr, '');
  return r.stdout;
}

describe('ipckit fifo', () => {
  test('create, cat waiting for write, write from stdin, rm', T, async () => {
    const p = join(dir, 'jobs');
    await ok(['fifo', 'create', p, '--mode', '0640']);
    assert.ok(statSync(p).isFIFO());
    assert.equal(statSync(p).mode & 0o777, 0o640);
    const cat = ipckit(['fifo', 'cat', p, '--timeout', '20000']);
    await ok(['fifo', 'write', p, '--timeout', '20000'], 'through the fifo\n');
    const r = await cat.done;
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, 'through the fifo\n');
    await ok(['fifo', 'rm', p]);
    assert.equal(fifo.isFifo(p), false);
  });

  test('write with no reader times out with one clear line', T, async () => {
    const p = join(dir, 'lonely');
    fifo.create(p);
    const r = await ipckit(['fifo', 'write', p, '--data', 'x', '--timeout', '100']).done;
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ipckit: ETIMEDOUT: .*open '.*lonely': no reader opened the FIFO within 100 ms\n$/);
    const rm = await ipckit(['fifo', 'rm', join(dir, 'nothing')]).done;
    assert.match(rm.stderr, /^ipckit: ENOENT/);
    fifo.remove(p);
  });
});

describe('ipckit ls --path', () => {
  test('lists FIFOs with their openers and Unix sockets with listening/stale state', T, async () => {
    const f = join(dir, 'watched');
    fifo.create(f);
    const holder = await fifo.open(f, 'rw');
    const live = join(dir, 'live.sock');
    const server = await unix.listen(live);
    const client = await unix.connect(live);
    const stale = join(dir, 'stale.sock');
    (await unix.listen(stale, { unlinkOnClose: false })).close();

    const rows = JSON.parse(await ok(['ls', 'fifo', 'unix-socket', '--json', '--path', dir])) as Array<{
      kind: string;
      name: string;
      mode: string;
      opens?: number;
      connections?: number;
      extra: { state: string; type?: string; pids?: number[] };
    }>;
    const byName = new Map(rows.map((r) => [r.name, r]));
    const fr = byName.get(f)!;
    assert.equal(fr.kind, 'fifo');
    assert.equal(fr.mode, '0600');
    assert.equal(fr.opens, 1);
    assert.equal(fr.extra.state, '1r/1w', 'an O_RDWR opener counts as reader and writer');
    assert.deepEqual(fr.extra.pids, [process.pid]);
    assert.deepEqual({ state: byName.get(live)!.extra.state, type: byName.get(live)!.extra.type, connections: byName.get(live)!.connections }, { state: 'listening', type: 'stream', connections: 1 });
    assert.equal(byName.get(stale)!.extra.state, 'stale');

    const text = await ok(['ls', 'unix-socket', '--path', dir]);
    assert.match(text, new RegExp(`^\\s+${live.replace(/[.]/g, '\\.')}\\s+\\S+\\s+0600\\s+1\\s+listening$`, 'm'));

    client.destroy();
    server.close();
    holder.destroy();
  });
});
