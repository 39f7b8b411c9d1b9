// `ipckit sem create|post|wait|get|rm` for POSIX named semaphores (/name)
// and System V semaphore sets (key, id:N, or 'private' to create). Each
// command opens what it needs, does one thing and closes it again.
import type { Command } from 'commander';
import { IpcError } from '../core/errors.js';
import * as posix from '../sync/sem.js';
import { sysv, type SysvSemaphoreSet } from '../sync/sem-sysv.js';
import { integerOption as integer, modeOption, msOption, parseTarget, removeEach, UsageError, sysvTarget, type Target } from './args.js';
import { writeStdout } from './io.js';
import { targetCommand } from './ls.js';
import { posixSemProvider, sysvSemProvider } from './sem-ls.js';
import { formatPairs, formatTable } from './table.js';
import { sysvIdentityPairs, sysvOwnerPairs, sysvStatJson, when } from './users.js';


/** The largest value of a System V semaphore (the kernel's SEMVMX). */
const SEMVMX = 32767;

/** An existing System V semaphore set named by key or id. */
function semSet(t: Target): SysvSemaphoreSet {
  return sysvTarget(t, sysv.get, sysv.fromId, 'semaphore set', 'ipckit ls sysv-sem');
}

/** --index checked against the set it points into (the set decides, so a failure, not a usage error). */
function indexIn(set: SysvSemaphoreSet, index = 0): number {
  if (index >= set.count) {
    throw new Error(`--index ${index} is past the end: the set has ${set.count} semaphore${set.count === 1 ? '' : 's'} (0 to ${set.count - 1})`);
  }
  return index;
}

interface CreateOptions {
  value?: number;
  count?: number;
  mode?: string;
  exclusive?: boolean;
}

async function create(text: string, o: CreateOptions): Promise<void> {
  const t = parseTarget(text, true);
  if (t.kind === 'posix') {
    if (o.count !== undefined) throw new UsageError('--count is for System V sets; a POSIX semaphore is one value');
    using _s = posix.open(t.name, { create: true, exclusive: !!o.exclusive, value: o.value ?? 0, mode: o.mode });
    return;
  }
  if (t.kind === 'sysv-id') throw new UsageError('cannot create by id: the kernel picks ids; give a key or private');
  // Checked before the set exists: a refused value must not leave a new set behind.
  if (o.value !== undefined && o.value > SEMVMX) throw new UsageError(`--value must be at most ${SEMVMX} for a System V semaphore (SEMVMX)`);
  const key = t.kind === 'private' ? 'private' : t.key;
  const count = o.count ?? 1;
  let set: SysvSemaphoreSet;
  let created = true;
  try {
    // Exclusive first, so --value initialises only a set this command made.
    set = sysv.get(key, { create: true, exclusive: true, count, mode: o.mode });
  } catch (e) {
    if (o.exclusive || !(e instanceof IpcError) || e.code !== 'EEXIST') throw e;
    set = sysv.get(key as number, { count });
    created = false;
  }
  if (created && o.value !== undefined) set.setAll(new Array<number>(set.count).fill(o.value));
  await writeStdout(`${set.id}\n`);
}

async function post(text: string, o: { index?: number; count?: number }): Promise<void> {
  const t = parseTarget(text);
  const n = o.count ?? 1;
  if (t.kind === 'posix') {
    if (o.index !== undefined) throw new UsageError('--index is for System V sets');
    using s = posix.open(t.name);
    for (let i = 0; i < n; i++) s.post();
    return;
  }
  if (n > SEMVMX) throw new UsageError(`--count must be at most ${SEMVMX} for a System V semaphore (SEMVMX)`);
  const set = semSet(t);
  await set.op([{ index: indexIn(set, o.index), delta: n }]);
}

async function wait(text: string, o: { index?: number; timeout?: number }): Promise<void> {
  const t = parseTarget(text);
  const ac = new AbortController();
  // Ctrl-C while waiting: cancel the wait and exit 130 like a shell would.
  const onSigint = () => ac.abort();
  process.once('SIGINT', onSigint);
  try {
    if (t.kind === 'posix') {
      if (o.index !== undefined) throw new UsageError('--index is for System V sets');
      using s = posix.open(t.name);
      await s.wait({ timeout: o.timeout, signal: ac.signal });
      return;
    }
    const set = semSet(t);
    await set.op([{ index: indexIn(set, o.index), delta: -1 }], { timeout: o.timeout, signal: ac.signal });
  } catch (e) {
    if (ac.signal.aborted) {
      process.exitCode = 130;
      return;
    }
    throw e;
  } finally {
    process.off('SIGINT', onSigint);
  }
}


async function get(text: string, o: { json?: boolean }): Promise<void> {
  const t = parseTarget(text);
  if (t.kind === 'posix') {
    using s = posix.open(t.name);
    const value = s.value;
    await writeStdout(o.json ? `${JSON.stringify({ kind: 'posix-sem', name: t.name, value })}\n` : `${value}\n`);
    return;
  }
  const set = semSet(t);
  const st = set.stat();
  const sems = Array.from({ length: set.count }, (_, i) => ({
    index: i,
    value: set.getValue(i),
    pid: set.pidOf(i),
    waiting: set.waitingCount(i),
    waitingForZero: set.zeroWaitingCount(i),
  }));
  if (o.json) {
    await writeStdout(sysvStatJson('sysv-sem', set.id, st, { semaphores: sems }));
    return;
  }
  await writeStdout(
    formatPairs([
      ...sysvIdentityPairs(set.id, st.key, 'System V semaphore set'),
      ['semaphores', String(st.count)],
      ...sysvOwnerPairs(st),
      ['otime', when(st.otime)],
      ['ctime', when(st.ctime)],
    ]) +
      '\n' +
      formatTable(
        [
          { header: 'INDEX', align: 'right' },
          { header: 'VALUE', align: 'right' },
          { header: 'PID', align: 'right' },
          { header: 'NCNT', align: 'right' },
          { header: 'ZCNT', align: 'right' },
        ],
        sems.map((s) => [s.index, s.value, s.pid, s.waiting, s.waitingForZero].map(String)),
      ),
  );
}

function rm(texts: string[]): void {
  removeEach(texts, (t) => (t.kind === 'posix' ? posix.unlink(t.name) : semSet(t).remove()));
}

export function register(program: Command): void {
  const sem = targetCommand(program, 'sem', 'semaphores: POSIX named (/name) and System V sets (key or id:N)', [posixSemProvider, sysvSemProvider]);

  sem
    .command('create')
    .description('create a semaphore or set (prints the id of a System V set)')
    .argument('<target>', "/name, a System V key, or 'private'")
    .option('--value <n>', `initial value (System V: of every semaphore in a set this creates, at most ${SEMVMX})`, integer('value', 0, 2 ** 31 - 1))
    .option('--count <n>', 'semaphores in a System V set (default 1)', integer('count', 1))
    .option('--mode <octal>', 'permission bits of a new object', modeOption, '600')
    .option('--exclusive', 'fail with EEXIST if it already exists')
    .action(create);

  sem
    .command('post')
    .description('increment (sem_post; System V: semop +n)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--index <i>', 'which semaphore of a System V set (default 0)', integer('index', 0))
    .option('--count <n>', 'increment by n (default 1)', integer('count', 1))
    .action(post);

  sem
    .command('wait')
    .description('decrement, waiting while the value is 0 (sem_wait; System V: semop -1)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--index <i>', 'which semaphore of a System V set (default 0)', integer('index', 0))
    .option('--timeout <ms>', 'give up after this many ms (exit status 1, ETIMEDOUT)', msOption)
    .action(wait);

  sem
    .command('get')
    .description('show the value (System V: every semaphore with GETVAL/GETPID/GETNCNT/GETZCNT, and IPC_STAT)')
    .argument('<target>', '/name, a System V key, or id:N')
    .option('--json', 'print one JSON object')
    .action(get);

  sem
    .command('rm')
    .description('remove: sem_unlink for /name, IPC_RMID for System V (waiters fail with EIDRM)')
    .argument('<targets...>', '/name, a System V key, or id:N')
    .action(rm);
}
