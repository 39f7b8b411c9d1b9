// The ipckit command, run as a real process against real kernel objects,
// checked against the library, peer processes, ipcmk/ipcs and /proc.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { shm } from 'ipckit';
import { has, run, startPeer, uniqueKey, uniqueName, removedAfter } from '../helpers.js';

const T = { timeout: 60_000 };
const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));
const hex = (key: number) => `0x${(key >>> 0).toString(16).padStart(8, '0')}`;

interface Result {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

/** Runs `ipckit ...` (node dist/cli/main.js) to completion, feeding `input` on stdin. */
function ipckit(args: string[], options: { input?: Uint8Array | string; env?: NodeJS.ProcessEnv; command?: string } = {}): Promise<Result> {
  const [cmd, argv] = options.command ? [options.command, args] : [process.execPath, [MAIN, ...args]];
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
  const out: Buffer[] = [];
  const err: Buffer[] = [];
  child.stdout.on('data', (c: Buffer) => out.push(c));
  child.stderr.on('data', (c: Buffer) => err.push(c));
  child.stdin.end(options.input ?? '');
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr: Buffer.concat(err).toString() }));
  });
}

/** Runs `ipckit ...` and insists that it succeeds. */
async function ok(args: string[], input?: Uint8Array | string): Promise<Buffer> {
  const r = await ipckit(args, { input });
  assert.equal(r.code, 0, `ipckit ${args.join(' ')} failed: ${r.stderr}`);
  assert.equal(r.stderr, '', `ipckit ${args.join(' ')} printed to stderr`);
  return r.stdout;
}

/** Runs `ipckit ...` and insists on exit status 1 with one `ipckit: ...` line and no stack trace. */
async function fails(args: string[], message: RegExp, input?: string): Promise<string> {
  const r = await ipckit(args, { input });
  assert.equal(r.code, 1, `ipckit ${args.join(' ')} should fail; stdout: ${r.stdout}`);
  assert.match(r.stderr, /^ipckit: /);
  assert.match(r.stderr, message);
  assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace without IPCKIT_DEBUG=1');
  return r.stderr;
}

/**
 * Runs `ipckit ...` and insists on a usage error: exit status 2, one line
 * `ipckit: ...` matching `message`, then the hint naming the command's help.
 */
async function usage(args: string[], message: RegExp, helpOf: string): Promise<string> {
  const r = await ipckit(args);
  assert.equal(r.code, 2, `ipckit ${args.join(' ')} should be a usage error; stderr: ${r.stderr}`);
  const lines = r.stderr.trimEnd().split('\n');
  assert.equal(lines.length, 2, `a message and a hint: ${r.stderr}`);
  assert.match(lines[0]!, /^ipckit: /);
  assert.match(lines[0]!, message);
  assert.equal(lines[1], `Try '${helpOf} --help'.`);
  assert.equal(r.stdout.length, 0);
  return lines[0]!;
}

const json = async <T = any>(args: string[]): Promise<T> => JSON.parse((await ok(args)).toString()) as T;

interface LsJsonRow {
  kind: string;
  name: string;
  key?: string;
  id?: number;
  owner: string;
  uid: number;
  mode: string;
  size?: number;
  attaches?: number;
  cpid?: number | null;
  extra?: Record<string, unknown>;
}
const lsRow = async (match: (r: LsJsonRow) => boolean): Promise<LsJsonRow | undefined> =>
  (await json<LsJsonRow[]>(['ls', '--json'])).find(match);

// Everything a test creates is removed here even if the test failed midway.
const names = removedAfter<string>((n) => shm.unlink(n));
const ids = removedAfter<number>((id) => shm.sysv.fromId(id).remove());
function name(tag: string): string {
  const n = uniqueName(`cli-${tag}`);
  names.add(n);
  return n;
}

const me = process.getuid!();
const myName = (() => {
  const line = readFileSync('/etc/passwd', 'utf8').split('\n').find((l) => l.split(':')[2] === String(me));
  return line ? line.split(':')[0]! : String(me);
})();

describe('ipckit shm with POSIX names', () => {
  test('create, write, read, stat, rm round trip', T, async () => {
    const n = name('posix');
    assert.equal((await ok(['shm', 'create', n, '--size', '4k', '--mode', '640'])).length, 0);
    assert.equal(existsSync(`/dev/shm${n}`), true);
    await ok(['shm', 'write', n, '--data', 'hello, shm']);
    await ok(['shm', 'write', n, '--data', 'tail', '--offset', '4092']);
    assert.equal((await ok(['shm', 'read', n, '--length', '10'])).toString(), 'hello, shm');
    assert.equal((await ok(['shm', 'read', n, '--offset', '7', '--length', '3'])).toString(), 'shm');
    const all = await ok(['shm', 'read', n]);
    assert.equal(all.length, 4096);
    assert.equal(all.subarray(4092).toString(), 'tail');

    // The library sees what the command wrote.
    {
      using region = shm.open(n, { readOnly: true });
      assert.equal(region.read(0, 10).toString(), 'hello, shm');
    }

    const st = await json(['shm', 'stat', n, '--json']);
    assert.equal(st.kind, 'posix-shm');
    assert.equal(st.name, n);
    assert.equal(st.size, 4096);
    assert.equal(st.mode, '0640');
    assert.equal(st.uid, me);
    assert.equal(st.owner, myName);
    assert.equal(typeof st.mtime, 'string');
    const human = (await ok(['shm', 'stat', n])).toString();
    assert.match(human, /^size\s+4096$/m);
    assert.match(human, /^mode\s+0640$/m);

    await ok(['shm', 'rm', n]);
    assert.equal(existsSync(`/dev/shm${n}`), false);
    await fails(['shm', 'stat', n], /ENOENT/);
  });

  test('binary data from stdin survives byte-exact, also at an offset', T, async () => {
    const n = name('binary');
    await ok(['shm', 'create', n, '--size', '1m']);
    const bytes = randomBytes(200_000);
    bytes[0] = 0;
    bytes[1] = 0xff;
    bytes[2] = 0x0a; // NUL, 0xff and newline must pass untouched
    await ok(['shm', 'write', n], bytes);
    const back = await ok(['shm', 'read', n, '--length', String(bytes.length)]);
    assert.equal(Buffer.compare(back, bytes), 0, 'read must return exactly the bytes written');
    const small = Buffer.from([0, 1, 2, 0xfe, 0xff]);
    await ok(['shm', 'write', n, '--offset', String(1024 * 1024 - 5)], small);
    assert.deepEqual(await ok(['shm', 'read', n, '--offset', String(1024 * 1024 - 5)]), small);
    await ok(['shm', 'rm', n]);
  });

  test('create --exclusive refuses an existing object; a second plain create opens it', T, async () => {
    const n = name('excl');
    await ok(['shm', 'create', n, '--size', '4096', '--exclusive']);
    await fails(['shm', 'create', n, '--size', '4096', '--exclusive'], /EEXIST/);
    await ok(['shm', 'create', n, '--size', '4096']);
    await fails(['shm', 'create', n, '--size', '8k'], /4096 bytes, smaller than the requested size 8192/);
    await ok(['shm', 'rm', n]);
  });

  test('a reader that stops early (| head) is not an error', T, async (t) => {
    if (!has('bash')) return t.skip('bash not installed');
    const n = name('epipe');
    await ok(['shm', 'create', n, '--size', '4m']);
    const r = await ipckit(['-c', `set -o pipefail; "${process.execPath}" "${MAIN}" shm read ${n} | head -c 1 >/dev/null`], { command: 'bash' });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    await ok(['shm', 'rm', n]);
  });
});

describe('ipckit shm with System V keys and ids', () => {
  test('create by key prints the id; write, read, stat and rm by key and by id', T, async () => {
    const key = uniqueKey();
    const id = Number((await ok(['shm', 'create', hex(key), '--size', '8192', '--mode', '0640'])).toString().trim());
    ids.add(id);
    assert.ok(Number.isInteger(id) && id >= 0);
    assert.equal(shm.sysv.get(key).id, id, 'the printed id is the key’s segment');

    await ok(['shm', 'write', hex(key), '--data', 'by key']);
    await ok(['shm', 'write', `id:${id}`, '--data', 'by id', '--offset', '100']);
    assert.equal((await ok(['shm', 'read', `id:${id}`, '--length', '6'])).toString(), 'by key');
    // Decimal keys name the same segment (key_t is signed; both spellings work).
    assert.equal((await ok(['shm', 'read', String(key | 0), '--offset', '100', '--length', '5'])).toString(), 'by id');

    const byKey = await json(['shm', 'stat', hex(key), '--json']);
    const byId = await json(['shm', 'stat', `id:${id}`, '--json']);
    assert.deepEqual(byKey, byId);
    assert.equal(byKey.kind, 'sysv-shm');
    assert.equal(byKey.id, id);
    assert.equal(byKey.key, hex(key));
    assert.equal(byKey.size, 8192);
    assert.equal(byKey.mode, '0640');
    assert.equal(byKey.nattch, 0, 'every command detached again');
    assert.equal(byKey.uid, me);
    assert.equal(byKey.cuid, me);
    for (const field of ['gid', 'cgid', 'cpid', 'lpid']) assert.equal(typeof byKey[field], 'number', field);
    for (const field of ['atime', 'dtime', 'ctime']) assert.equal(typeof byKey[field], 'string', field);
    assert.equal(byKey.markedForRemoval, false);
    assert.equal(byKey.locked, false);
    assert.match((await ok(['shm', 'stat', `id:${id}`])).toString(), new RegExp(`^key\\s+${hex(key)}$`, 'm'));

    // ipcs agrees with what we created.
    if (has('ipcs')) {
      const ipcs = run('ipcs', ['-m', '-i', String(id)]);
      assert.match(ipcs, /bytes=8192/);
      assert.match(ipcs, /mode=0640/);
    }

    await ok(['shm', 'rm', hex(key)]);
    ids.delete(id);
    await fails(['shm', 'stat', hex(key)], /ENOENT/);
    await fails(['shm', 'stat', `id:${id}`], /no System V segment has this id/);
  });

  test("'private' creates a new segment and prints its id; id:N addresses it", T, async () => {
    const id = Number((await ok(['shm', 'create', 'private', '--size', '1k'])).toString().trim());
    ids.add(id);
    const bytes = randomBytes(1024);
    await ok(['shm', 'write', `id:${id}`], bytes);
    assert.deepEqual(await ok(['shm', 'read', `id:${id}`]), bytes);
    const st = await json(['shm', 'stat', `id:${id}`, '--json']);
    assert.equal(st.key, '0x00000000');
    assert.equal(st.size, 1024);
    assert.equal(st.mode, '0600', 'default mode');
    await ok(['shm', 'rm', `id:${id}`]);
    ids.delete(id);
  });

  test('a segment made by ipcmk -M is listed and read by id:N', T, async (t) => {
    if (!has('ipcmk')) return t.skip('ipcmk not installed');
    const m = /(\d+)/.exec(run('ipcmk', ['-M', '4096', '-p', '0644']));
    assert.ok(m, 'ipcmk printed an id');
    const id = Number(m[1]);
    ids.add(id);
    const row = await lsRow((r) => r.kind === 'sysv-shm' && r.id === id);
    assert.ok(row, 'ls --json lists the ipcmk segment');
    assert.equal(row.size, 4096);
    assert.equal(row.mode, '0644');
    assert.equal(row.attaches, 0);
    assert.ok(typeof row.cpid === 'number' && row.cpid > 0 && row.cpid !== process.pid);
    assert.deepEqual(await ok(['shm', 'read', `id:${id}`, '--length', '16']), Buffer.alloc(16), 'a new segment is zeroed');
    await ok(['shm', 'write', `id:${id}`, '--data', 'from ipckit']);
    assert.equal((await ok(['shm', 'read', `id:${id}`, '--length', '11'])).toString(), 'from ipckit');
    run('ipcrm', ['-m', String(id)]);
    ids.delete(id);
  });
});

describe('ipckit ls', () => {
  test('lists a POSIX object with its attach count while a peer maps it', T, async () => {
    const n = name('ls-posix');
    shm.open(n, { create: true, exclusive: true, size: 12_288, mode: 0o604 }).close();
    let row = await lsRow((r) => r.name === n);
    assert.ok(row, 'ls --json lists the object');
    assert.deepEqual(
      { kind: row.kind, owner: row.owner, uid: row.uid, mode: row.mode, size: row.size, attaches: row.attaches, cpid: row.cpid },
      { kind: 'posix-shm', owner: myName, uid: me, mode: '0604', size: 12_288, attaches: 0, cpid: null },
    );

    const peer = startPeer('shm-peer');
    try {
      await peer.next();
      peer.send({ op: 'open', name: n });
      assert.deepEqual(await peer.next(), { size: 12_288 });
      row = await lsRow((r) => r.name === n);
      assert.equal(row?.attaches, 1, 'the peer maps it');
      // Human output: a row under the POSIX heading.
      const text = (await ok(['ls'])).toString();
      assert.match(text, /^POSIX shared memory .*\[posix-shm\]$/m);
      assert.match(text, new RegExp(`^\\s+${n}\\s+${myName}\\s+0604\\s+12288\\s+1\\s+-$`, 'm'));
    } finally {
      peer.send({ op: 'exit' });
      await peer.exited;
    }
    row = await lsRow((r) => r.name === n);
    assert.equal(row?.attaches, 0, 'the peer is gone');
    await ok(['shm', 'rm', n]);
    assert.equal(await lsRow((r) => r.name === n), undefined);
  });

  test('lists a System V segment with size, mode, attach count and creator pid', T, async () => {
    const key = uniqueKey();
    using seg = shm.sysv.get(key, { create: true, exclusive: true, size: 20_000, mode: 0o640 });
    ids.add(seg.id);
    const find = () => lsRow((r) => r.kind === 'sysv-shm' && r.id === seg.id);
    let row = await find();
    assert.ok(row);
    assert.deepEqual(
      { name: row.name, key: row.key, owner: row.owner, mode: row.mode, size: row.size, attaches: row.attaches, cpid: row.cpid },
      { name: hex(key), key: hex(key), owner: myName, mode: '0640', size: 20_000, attaches: 0, cpid: process.pid },
    );
    seg.attach();
    const peer = startPeer('shm-peer');
    try {
      await peer.next();
      peer.send({ op: 'sysv', id: seg.id });
      assert.deepEqual(await peer.next(), { size: 20_000 });
      row = await find();
      assert.equal(row?.attaches, 2, 'this process and the peer');
      // lpid moves with every fork of an attached process (spawning `ipckit` too), so only its type is stable.
      assert.equal(typeof row?.extra?.lpid, 'number');
      const text = (await ok(['ls', 'sysv-shm'])).toString();
      assert.doesNotMatch(text, /posix-shm/, 'only the asked-for kind');
      assert.match(text, new RegExp(`^\\s+${hex(key)}\\s+${seg.id}\\s+${myName}\\s+0640\\s+20000\\s+2\\s+${process.pid}$`, 'm'));
    } finally {
      peer.send({ op: 'exit' });
      await peer.exited;
    }
    seg.detach();
    seg.remove();
    ids.delete(seg.id);
    assert.equal(await find(), undefined);
  });

  test('unknown kinds are refused', T, async () => {
    await usage(['ls', 'nonsense'], /unknown kind nonsense \(known: posix-shm, sysv-shm/, 'ipckit ls');
  });
});

describe('ipckit errors', () => {
  test('missing objects: ENOENT', T, async () => {
    await fails(['shm', 'read', uniqueName('cli-missing')], /^ipckit: ENOENT: no such file or directory, shm_open '\/ipckit-test-cli-missing-/);
    await fails(['shm', 'stat', hex(uniqueKey())], /^ipckit: ENOENT: .*shmget key 0x/);
    await fails(['shm', 'rm', uniqueName('cli-missing')], /ENOENT.*shm_unlink/);
  });

  test('bad names and targets say what is wrong (usage errors: exit status 2)', T, async () => {
    await usage(['shm', 'create', '/a/b', '--size', '1'], /may contain only the leading '\/'/, 'ipckit shm create');
    await usage(['shm', 'create', 'noslash', '--size', '1'], /not a target: "noslash" \(use \/name \(POSIX\)/, 'ipckit shm create');
    await usage(['shm', 'read', 'private'], /'private' only makes sense with create/, 'ipckit shm read');
    await usage(['shm', 'create', 'id:3', '--size', '1'], /cannot create by id/, 'ipckit shm create');
    await usage(['shm', 'create', '0', '--size', '1'], /key 0 is IPC_PRIVATE/, 'ipckit shm create');
  });

  test('bad options are refused before anything is created (usage errors: exit status 2)', T, async () => {
    const n = name('bad-options');
    await usage(['shm', 'create', n], /required option '--size <bytes>' not specified/, 'ipckit shm create');
    await usage(['shm', 'create', n, '--size', '4x'], /size must be a byte count like 4096, 4k or 1m, got "4x"/, 'ipckit shm create');
    await usage(['shm', 'create', n, '--size', '4k', '--mode', '999'], /mode must be permission bits/, 'ipckit shm create');
    assert.equal(existsSync(`/dev/shm${n}`), false, 'nothing left behind');
    const key = uniqueKey();
    await usage(['shm', 'create', hex(key), '--size', '4k', '--mode', '999'], /mode must be permission bits/, 'ipckit shm create');
    await fails(['shm', 'stat', hex(key)], /ENOENT/);
    await usage(['shm', 'frobnicate'], /unknown command 'frobnicate'/, 'ipckit shm');
  });

  test('writing past the end is refused and changes nothing', T, async () => {
    const n = name('too-long');
    await ok(['shm', 'create', n, '--size', '16']);
    await ok(['shm', 'write', n, '--data', 'x'.repeat(16)]);
    await fails(['shm', 'write', n, '--data', 'yyyy', '--offset', '14'], /4 bytes at offset 14 do not fit in region '.*' of 16 bytes/);
    await fails(['shm', 'read', n, '--offset', '8', '--length', '9'], /length must be between 0 and 8, got 9/);
    assert.equal((await ok(['shm', 'read', n])).toString(), 'x'.repeat(16));
    await ok(['shm', 'rm', n]);
  });

  test('rm tries every target and reports each failure', T, async () => {
    const [a, b] = [name('rm-a'), name('rm-b')];
    await ok(['shm', 'create', a, '--size', '1']);
    await ok(['shm', 'create', b, '--size', '1']);
    const missing = uniqueName('cli-rm-missing');
    const stderr = await fails(['shm', 'rm', a, missing, b], /ENOENT.*shm_unlink/);
    assert.equal(stderr.trim().split('\n').length, 1, 'one failure, one line');
    assert.equal(existsSync(`/dev/shm${a}`) || existsSync(`/dev/shm${b}`), false, 'both existing objects removed');
  });

  test('IPCKIT_DEBUG=1 adds the stack trace', T, async () => {
    const r = await ipckit(['shm', 'read', uniqueName('cli-debug')], { env: { ...process.env, IPCKIT_DEBUG: '1' } });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^ipckit: ENOENT/);
    assert.match(r.stderr, /\n\s+at /);
  });
});

describe('ipckit as an installed command', () => {
  test('runs through a bin symlink with its shebang, as npm links it', T, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ipckit-bin-'));
    try {
      chmodSync(MAIN, 0o755); // what npm's bin linking does on install
      const bin = join(dir, 'ipckit');
      symlinkSync(MAIN, bin);
      const r = await ipckit(['--version'], { command: bin });
      assert.equal(r.code, 0, r.stderr);
      const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'));
      assert.equal(r.stdout.toString().trim(), pkg.version);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
