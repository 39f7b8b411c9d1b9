// `ipckit limits`: the values against /proc and lsipc, and the current use
// counted exactly inside a private IPC namespace (no other process's objects
// there), RLIMIT_MSGQUEUE's included, checked against the kernel's own
// accounting with prlimit.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { has } from '../helpers.js';
import { MAIN, runCli } from './cli-run.js';

const T = { timeout: 60_000 };

interface Row {
  group: string;
  name: string;
  description: string;
  limit: number | string | null;
  hard?: number | string | null;
  used?: number | null;
  unit: string;
  source: string;
}

const NAMES = [
  'queues_max', 'msg_max', 'msgsize_max', 'msg_default', 'msgsize_default', 'RLIMIT_MSGQUEUE',
  'shmmax', 'shmall', 'shmmni', 'semmsl', 'semmns', 'semopm', 'semmni', 'SEMVMX',
  'msgmax', 'msgmnb', 'msgmni', 'RLIMIT_NOFILE', 'file-max', 'somaxconn', 'wmem_default',
];

/** The exact decimal digits of a row's limit in the JSON text (JSON.parse rounds numbers beyond 2^53). */
function exactLimit(json: string, name: string): string {
  const m = new RegExp(`"name": "${name}",[^}]*?"limit": ("?[\\w-]+"?)`).exec(json);
  assert.ok(m, `${name} in the JSON`);
  return m[1]!.replace(/"/g, '');
}

const procText = (path: string, field = 0): string => readFileSync(path, 'utf8').trim().split(/\s+/)[field]!;

/** As ipc/mqueue.c charges a queue to its creator's RLIMIT_MSGQUEUE on a 64-bit kernel. */
const charge = (maxmsg: number, msgsize: number) => maxmsg * msgsize + maxmsg * 48 + Math.min(maxmsg, 32768) * 48;

describe('ipckit limits', () => {
  test('--json: every limit with its source; the values are what /proc says', T, async () => {
    const r = await runCli(['limits', '--json']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    const text = r.stdout.toString();
    const rows = JSON.parse(text) as Row[];
    assert.deepEqual(rows.map((x) => x.name), NAMES);
    for (const row of rows) {
      assert.deepEqual(Object.keys(row).filter((k) => !['hard', 'used'].includes(k)), ['group', 'name', 'description', 'limit', 'unit', 'source'], row.name);
      assert.ok(['posix-mq', 'sysv-shm', 'sysv-sem', 'sysv-msg', 'files'].includes(row.group), row.group);
      assert.ok(row.description.length > 0 && row.unit.length > 0 && row.source.length > 0);
      assert.ok(row.used === undefined || row.used === null || (Number.isInteger(row.used) && row.used >= 0), `${row.name} used ${row.used}`);
    }
    const MQ = '/proc/sys/fs/mqueue';
    for (const name of ['queues_max', 'msg_max', 'msgsize_max', 'msg_default', 'msgsize_default']) assert.equal(exactLimit(text, name), procText(`${MQ}/${name}`), name);
    for (const name of ['shmmax', 'shmall', 'shmmni', 'msgmax', 'msgmnb', 'msgmni']) assert.equal(exactLimit(text, name), procText(`/proc/sys/kernel/${name}`), name);
    ['semmsl', 'semmns', 'semopm', 'semmni'].forEach((name, i) => assert.equal(exactLimit(text, name), procText('/proc/sys/kernel/sem', i), name));
    assert.equal(exactLimit(text, 'somaxconn'), procText('/proc/sys/net/core/somaxconn'));
    assert.equal(exactLimit(text, 'wmem_default'), procText('/proc/sys/net/core/wmem_default'));
    assert.equal(exactLimit(text, 'file-max'), procText('/proc/sys/fs/file-max'));
    // The child inherits this process's resource limits.
    const limits = readFileSync('/proc/self/limits', 'utf8');
    for (const [name, label] of [['RLIMIT_MSGQUEUE', 'Max msgqueue size'], ['RLIMIT_NOFILE', 'Max open files']] as const) {
      const [, soft, hard] = new RegExp(`^${label}\\s+(\\S+)\\s+(\\S+)`, 'm').exec(limits)!;
      const row = rows.find((x) => x.name === name)!;
      assert.deepEqual([String(row.limit), String(row.hard)], [soft, hard], name);
    }
    // Counts of things that exist are numbers; per-call maxima have no "use".
    for (const name of ['shmmni', 'shmall', 'semmni', 'semmns', 'msgmni', 'file-max']) assert.equal(typeof rows.find((x) => x.name === name)!.used, 'number', name);
    for (const name of ['shmmax', 'semopm', 'msgmax', 'msg_max']) assert.equal(rows.find((x) => x.name === name)!.used, undefined, name);
  });

  test('the table: one section per group, a row per limit', T, async () => {
    const r = await runCli(['limits']);
    assert.equal(r.code, 0, r.stderr);
    const text = r.stdout.toString();
    for (const heading of ['POSIX message queues [posix-mq]', 'System V shared memory [sysv-shm]', 'System V semaphores [sysv-sem]', 'System V message queues [sysv-msg]', 'Descriptors and sockets [files]']) {
      assert.ok(text.includes(`${heading}\n  NAME `), heading);
    }
    assert.match(text, new RegExp(`^  msg_max\\s+${procText('/proc/sys/fs/mqueue/msg_max')}\\s+-\\s+-\\s+messages\\s`, 'm'));
    assert.match(text, /^ {2}shmmni\s+\d+\s+\d+\s+\d+\.\d\d%\s+segments\s/m);
    assert.match(text, /^ {2}RLIMIT_MSGQUEUE\s.*; hard limit (\d+|unlimited)$/m);
  });

  test('the same limits as lsipc', { ...T, skip: !has('lsipc') && 'lsipc (util-linux) not installed' }, async () => {
    const lsipc = spawnSync('lsipc', ['--global', '--raw', '--bytes', '--noheadings', '-o', 'RESOURCE,LIMIT'], { encoding: 'utf8' });
    assert.equal(lsipc.status, 0, lsipc.stderr);
    const theirs = new Map(lsipc.stdout.trim().split('\n').map((line) => line.split(' ') as [string, string]));
    const text = (await runCli(['limits', '--json'])).stdout.toString();
    let compared = 0;
    for (const resource of ['MSGMNI', 'MSGMAX', 'MSGMNB', 'SHMMNI', 'SHMALL', 'SHMMAX', 'SEMMNI', 'SEMMNS', 'SEMMSL', 'SEMOPM', 'SEMVMX']) {
      const value = theirs.get(resource);
      if (value === undefined) continue; // an older lsipc
      assert.equal(exactLimit(text, resource === 'SEMVMX' ? 'SEMVMX' : resource.toLowerCase()), value, resource);
      compared++;
    }
    assert.ok(compared >= 8, `compared ${compared} values`);
  });

  test('current use, exactly, in a private IPC namespace: queues, RLIMIT_MSGQUEUE bytes, segments, pages, sets, semaphores', T, async (t) => {
    if (!has('unshare')) return t.skip('unshare (util-linux) not installed');
    // A new user namespace makes this work without root; the IPC namespace is empty and
    // goes away with its last process; the mount namespace gets its own mqueue filesystem.
    const probe = spawnSync('unshare', ['-U', '-r', '--ipc', '--mount', 'sh', '-c', 'mount -t mqueue none /dev/mqueue'], { encoding: 'utf8' });
    if (probe.status !== 0) return t.skip(`no private namespaces here: ${probe.stderr.trim()}`);
    const ipckit = `"${process.execPath}" "${MAIN}"`;
    const C1 = charge(3, 100);
    const C2 = charge(2, 50);
    const C3 = charge(4, 64);
    const script = [
      'set -e',
      'mount -t mqueue none /dev/mqueue',
      `${ipckit} mq create /a --max-messages 3 --message-size 100`,
      `${ipckit} mq create /b --max-messages 2 --message-size 50`,
      `${ipckit} shm create private --size 5000 >/dev/null`,
      `${ipckit} shm create private --size 4096 >/dev/null`,
      `${ipckit} sem create private --count 3 >/dev/null`,
      `${ipckit} mq create private >/dev/null`,
      `${ipckit} limits --json`,
      // The kernel agrees on the bytes: a third queue fits a limit of exactly the sum, and not one byte less.
      has('prlimit') ? `prlimit --msgqueue=${C1 + C2 + C3 - 1} ${ipckit} mq create /c --max-messages 4 --message-size 64 2>&1 || true` : 'true',
      has('prlimit') ? `prlimit --msgqueue=${C1 + C2 + C3} ${ipckit} mq create /c --max-messages 4 --message-size 64 && echo created` : 'true',
    ].join('\n');
    const r = spawnSync('unshare', ['-U', '-r', '--ipc', '--mount', 'sh', '-c', script], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const json = r.stdout.slice(0, r.stdout.lastIndexOf(']') + 1);
    const used = Object.fromEntries((JSON.parse(json) as Row[]).map((x) => [x.name, x.used]));
    assert.deepEqual(
      { queues_max: used.queues_max, RLIMIT_MSGQUEUE: used.RLIMIT_MSGQUEUE, shmmni: used.shmmni, shmall: used.shmall, semmni: used.semmni, semmns: used.semmns, msgmni: used.msgmni },
      { queues_max: 2, RLIMIT_MSGQUEUE: C1 + C2, shmmni: 2, shmall: 3, semmni: 1, semmns: 3, msgmni: 1 },
    );
    if (has('prlimit')) {
      const after = r.stdout.slice(json.length);
      assert.match(after, /EMFILE/, 'one byte short of the charge: refused');
      assert.match(after, /created\s*$/, 'exactly the charge: created');
    }
  });
});
