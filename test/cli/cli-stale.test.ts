// `ipckit ls --stale`, `ipckit rm --stale [--yes]` and `ipckit ls --watch`,
// run as real processes. A maker (test/fixtures/ipc-objects.ts) creates one
// object of every kind and is killed with SIGKILL, so nothing can clean up;
// a holder then keeps them in use. Every command here is narrowed with
// --match to this test's objects: other test runs on the machine may have
// objects of their own that look stale for a moment.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, unlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, describe, test } from 'node:test';
import { mq, sem } from 'ipckit';
import { hex, ipckit, MAIN, ok } from './cli-run.js';
import { has, startPeer, uniqueName } from '../helpers.js';
import { cleanup, KINDS, newSpec, present, type Spec } from '../ipc-objects-spec.js';

const T = { timeout: 90_000 };
const dir = mkdtempSync(join(tmpdir(), 'ipckit-stale-'));

interface Row {
  kind: string;
  name: string;
  id?: number;
  reason: string;
  action?: string;
}

/** Every IPC kind the fixture makes (its mapped file is not an IPC object: not ours to judge). */
const IPC_KINDS = KINDS.filter((k) => k !== 'mapped-file').sort();
const specs: Spec[] = [];
function stale(): Spec {
  const s = newSpec('stale', dir, 'wait', false);
  specs.push(s);
  return s;
}
/** The arguments that narrow a command to this spec's objects. */
const scope = (s: Spec) => ['--path', dir, '--match', [s.tag, ...s.keys.map(hex)].join('|')];
const kinds = (rows: Row[]) => rows.map((r) => r.kind).sort();
/** Which of the spec's objects exist, by kind, sorted as kinds() sorts. */
const left = (s: Spec) => present(s).sort();

after(() => {
  for (const s of specs) cleanup(s);
  rmSync(dir, { recursive: true, force: true });
});

/** Makes one object of every kind in a process, then kills it with SIGKILL. */
async function leftBehindByKill(s: Spec): Promise<void> {
  const maker = startPeer('ipc-objects', ['make', JSON.stringify(s)]);
  await maker.next();
  // While the maker lives: its System V objects and its listening socket are in use; the
  // POSIX objects and the FIFO it closed are not (the kernel records no creator for them).
  const alive = JSON.parse(await ok(['ls', '--stale', '--json', ...scope(s)])) as Row[];
  assert.deepEqual(kinds(alive), ['fifo', 'posix-mq', 'posix-sem', 'posix-shm']);
  maker.child.kill('SIGKILL');
  assert.equal((await maker.exited).signal, 'SIGKILL');
  unlinkSync(join(dir, `${s.tag}.bin`)); // a mapped file is not an IPC object: not ours to judge
  assert.deepEqual(left(s), IPC_KINDS, 'kill -9 leaves every kind behind');
}

describe('ipckit ls --stale, ipckit rm --stale', () => {
  test('every kind a SIGKILLed creator left is listed, a dry run removes nothing, --yes removes them all', T, async () => {
    const s = stale();
    await leftBehindByKill(s);

    const rows = JSON.parse(await ok(['ls', '--stale', '--json', ...scope(s)])) as Row[];
    assert.deepEqual(kinds(rows), IPC_KINDS);
    const reasons = Object.fromEntries(rows.map((r) => [r.kind, r.reason]));
    assert.equal(reasons['posix-shm'], 'nobody maps it or has it open');
    assert.match(reasons['sysv-shm']!, /^no attaches, and its creator and last user are gone \(pid \d+\)$/);
    assert.match(reasons['sysv-sem']!, /^nobody waits on it, and the last processes to use it are gone/);
    assert.match(reasons['sysv-mq']!, /gone .*; 1 message in it$/);
    assert.equal(reasons['fifo'], 'nobody has it open');
    assert.match(reasons['unix-socket']!, /no socket is bound to it/);
    const table = await ok(['ls', '--stale', ...scope(s)]);
    assert.match(table, /^KIND\s+NAME\s+OWNER\s+MODE\s+WHY$/m);
    assert.match(table, new RegExp(`^posix-shm\\s+/${s.tag}-shm\\s+\\S+\\s+0600\\s+nobody maps it or has it open$`, 'm'));

    const dry = await ok(['rm', '--stale', ...scope(s)]);
    assert.match(dry, /dry run: nothing removed; add --yes to remove these 8/);
    assert.equal(dry.match(/^would-remove /gm)?.length, 8);
    assert.deepEqual(left(s), IPC_KINDS, 'the dry run removed nothing');

    const done = JSON.parse(await ok(['rm', '--stale', '--yes', '--json', ...scope(s)])) as Row[];
    assert.deepEqual(kinds(done), IPC_KINDS);
    assert.ok(done.every((r) => r.action === 'removed'), JSON.stringify(done));
    assert.deepEqual(left(s), []);
    assert.equal(await ok(['ls', '--stale', ...scope(s)]), 'no stale objects\n');
  });

  test('objects in use (mapped, open, attached, waited on, served) are never listed nor removed', T, async () => {
    const s = stale();
    await leftBehindByKill(s);
    const holder = startPeer('ipc-objects', ['hold', JSON.stringify(s)]);
    try {
      await holder.next();
      assert.deepEqual(JSON.parse(await ok(['ls', '--stale', '--json', ...scope(s)])), []);
      assert.deepEqual(JSON.parse(await ok(['rm', '--stale', '--yes', '--json', ...scope(s)])), []);
      assert.deepEqual(left(s), IPC_KINDS, 'nothing in use was removed');
    } finally {
      holder.send('exit');
      await holder.exited;
    }
    // The holder served the socket file itself and removed it on close; the rest is stale again.
    const done = JSON.parse(await ok(['rm', '--stale', '--yes', '--json', ...scope(s)])) as Row[];
    assert.deepEqual(kinds(done), IPC_KINDS.filter((k) => k !== 'unix-socket').sort());
    assert.deepEqual(left(s), []);
  });

  // One kind at a time in use, the others not: each kind's own use is what keeps it.
  for (const kind of IPC_KINDS) {
    test(`${kind} in use is kept while the others go`, T, async () => {
      const s = stale();
      await leftBehindByKill(s);
      const holder = startPeer('ipc-objects', ['hold', JSON.stringify({ ...s, hold: kind })]);
      try {
        await holder.next();
        const others = IPC_KINDS.filter((k) => k !== kind);
        assert.deepEqual(kinds(JSON.parse(await ok(['ls', '--stale', '--json', ...scope(s)])) as Row[]), others);
        assert.deepEqual(kinds(JSON.parse(await ok(['rm', '--stale', '--yes', '--json', ...scope(s)])) as Row[]), others);
        assert.deepEqual(left(s), [kind]);
      } finally {
        holder.send('exit');
        await holder.exited;
      }
    });
  }

  test('FIFOs and socket files are looked for only in --path directories; kinds and --match narrow', T, async () => {
    const s = stale();
    await leftBehindByKill(s);
    const match = ['--match', [s.tag, ...s.keys.map(hex)].join('|')];
    const noPath = JSON.parse(await ok(['ls', '--stale', '--json', ...match])) as Row[];
    assert.deepEqual(kinds(noPath), IPC_KINDS.filter((k) => k !== 'fifo' && k !== 'unix-socket').sort());
    const some = JSON.parse(await ok(['rm', '--stale', 'sysv-sem', 'fifo', '--yes', '--json', ...scope(s)])) as Row[];
    assert.deepEqual(kinds(some), ['fifo', 'sysv-sem']);
    assert.deepEqual(left(s), IPC_KINDS.filter((k) => k !== 'fifo' && k !== 'sysv-sem').sort());
    await ok(['rm', '--stale', '--yes', ...scope(s)]);
    assert.deepEqual(left(s), []);
  });

  test('command-line mistakes', T, async () => {
    const r = await ipckit(['rm']);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, /^ipckit: ipckit rm removes stale objects: add --stale/);
    assert.match((await ipckit(['rm', '--stale', 'nonsense'])).stderr, /unknown kind nonsense/);
    assert.match((await ipckit(['ls', '--stale', '--match', '('])).stderr, /--match: not a regular expression/);
    assert.match((await ipckit(['ls', '--min-age', '10'])).stderr, /--min-age applies with --stale/);
    assert.match((await ipckit(['ls', '--stale', '--watch'])).stderr, /cannot be combined/);
  });
});

describe('ipckit ls --watch', () => {
  /** Starts `ipckit ls --watch ...`; lines of stdout as they come. */
  function watch(args: string[]) {
    const child = spawn(process.execPath, [MAIN, 'ls', '--watch', ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    const waiters: Array<() => void> = [];
    createInterface({ input: child.stdout }).on('line', (l) => {
      lines.push(l);
      for (const w of waiters.splice(0)) w();
    });
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
    const until = async (test: () => boolean) => {
      while (!test()) await new Promise<void>((resolve) => waiters.push(resolve));
    };
    return { child, lines, until, exited, stderr: () => stderr };
  }

  test('--json: one JSON line per refresh with counts and rates; Ctrl-C (SIGINT) exits 0', T, async () => {
    const q = mq.sysv.get('private');
    try {
      const w = watch(['--json', '--interval', '100', 'sysv-mq', '--match', `^id:${q.id}$`]);
      await w.until(() => w.lines.length >= 1);
      await q.send(1, 'a');
      await q.send(1, 'b');
      await w.until(() => w.lines.length >= 3);
      const ticks = w.lines.map((l) => JSON.parse(l) as { time: string; intervalMs: number; objects: Array<{ kind: string; id: number; messages: number; rate: number | null }> });
      for (const t of ticks) {
        assert.equal(t.intervalMs, 100);
        assert.ok(!Number.isNaN(Date.parse(t.time)));
        assert.deepEqual(t.objects.map((o) => o.id), [q.id], 'only the matched queue');
      }
      assert.equal(ticks[0]!.objects[0]!.rate, null, 'no rate before a second look');
      assert.equal(typeof ticks[1]!.objects[0]!.rate, 'number');
      assert.equal(ticks.at(-1)!.objects[0]!.messages, 2);
      w.child.kill('SIGINT');
      assert.deepEqual(await w.exited, { code: 0, signal: null });
      assert.equal(w.stderr(), '');
    } finally {
      q.remove();
    }
  });

  test('in a terminal: each refresh goes back up over the previous view and redraws it', { ...T, skip: !has('script') && 'needs script(1) for a pseudo-terminal' }, async () => {
    const n = uniqueName('watch-tty');
    const s = sem.open(n, { create: true, value: 2 });
    const child = spawn('script', ['-qec', `"${process.execPath}" "${MAIN}" ls --watch --interval 50 posix-sem --match ${n}`, '/dev/null'], { stdio: ['pipe', 'pipe', 'ignore'] });
    try {
      let out = '';
      await new Promise<void>((resolve) => {
        child.stdout.on('data', (c) => {
          out += c;
          if ((out.match(/ipckit ls --watch: /g) ?? []).length >= 3) resolve();
        });
      });
      // Header, blank line, section title, column heads, one row: 5 rows to go back up.
      assert.match(out, /\x1b\[5A\r\x1b\[Jipckit ls --watch: /);
      assert.match(out, new RegExp(`${n}\\s+\\S+\\s+0600\\s+2\\s+-\\s+0\\r?\\n`));
    } finally {
      child.kill('SIGKILL');
      s.close();
      sem.unlink(n);
    }
  });

  test('piped (not a terminal): successive plain listings with a RATE column', T, async () => {
    const n = uniqueName('watch-sem');
    const s = sem.open(n, { create: true, value: 5 });
    try {
      const w = watch(['--interval', '50', 'posix-sem', '--match', n]);
      const row = (rate: string) => new RegExp(`^\\s+${n}\\s+\\S+\\s+0600\\s+5\\s+-\\s+${rate}$`);
      // The first listing has no rate yet; the next one has 0 per second.
      await w.until(() => w.lines.some((l) => row('0').test(l)));
      w.child.kill('SIGINT');
      assert.deepEqual(await w.exited, { code: 0, signal: null });
      const text = w.lines.join('\n');
      assert.doesNotMatch(text, /\x1b\[/, 'no cursor movement when piped');
      assert.ok(w.lines.filter((l) => l.startsWith('ipckit ls --watch: ')).length >= 2, 'successive listings');
      assert.match(text, /^\s+NAME\s+OWNER\s+MODE\s+VALUE\s+CPID\s+RATE$/m);
      assert.ok(w.lines.some((l) => row('-').test(l)), 'the first listing has no rate yet');
    } finally {
      s.close();
      sem.unlink(n);
    }
  });
});
