// `ipckit sem create|post|wait|get|rm` for POSIX named semaphores (/name)
// and System V semaphore sets (key, id:N, or 'private' to create). Each
// command opens what it needs, does one thing and closes it again.
import { InvalidArgumentError, type Command } from 'commander';
import { IpcError } from '../errors.js';
import * as posix from '../sem.js';
import { sysv, type SysvSemaphoreSet } from '../sem-sysv.js';
import { parseTarget, removeEach, TARGET_HELP, UsageError, sysvTarget, type Target } from './args.js';
import { writeStdout } from './io.js';
import { addLsProvider } from './ls.js';
import { posixSemProvider, sysvSemProvider } from './sem-ls.js';
import { formatPairs, formatTable } from './table.js';
import { sysvIdentityPairs, sysvOwnerPairs, sysvStatJson, when } from './users.js';

const integer = (what: string, min: number) => (text: string): number => {
  const n = /^\d+$/.test(text.trim()) ? Number(text) : NaN;
  if (!Number.isSafeInteger(n) || n < min) throw new InvalidArgumentError(`${what} must be an integer >= ${min}, got ${JSON.stringify(text)}`);
  return n;
};
const milliseconds = (text: string): number => {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n < 0) throw new InvalidArgumentError(`timeout must be milliseconds >= 0, got ${JSON.stringify(text)}`);
  return n;
};

/** An existing System V semaphore set named by key or id. */
function semSet(t: Target): SysvSemaphoreSet {
  return sysvTarget(t, sysv.get, sysv.fromId, 'semaphore set', 'ipckit ls sysv-sem');
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
  const set = semSet(t);
  if (n > 32767) throw new UsageError('--count must be at most 32767 for a System V semaphore (SEMVMX)');
  await set.op([{ index: o.index ?? 0, delta: n }]);
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
    await semSet(t).op([{ index: o.index ?? 0, delta: -1 }], { timeout: o.timeout, signal: ac.signal });
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
  addLsProvider(posixSemProvider);
  addLsProvider(sysvSemProvider);

  const sem = program
    .command('sem')
    .description('semaphores: POSIX named (/name) and System V sets (key or id:N)')
    .addHelpText('after', `\nTargets: ${TARGET_HELP}.`);

  sem
    .command('create')
    .description('create a semaphore or set (prints the id of a System V set)')
    .argument('<target>', "/name, a System V key, or 'private'")
    .option('--value <n>', 'initial value (System V: of every semaphore in a set this creates)', integer('value', 0))
    .option('--count <n>', 'semaphores in a System V set (default 1)', integer('count', 1))
    .option('--mode <octal>', 'permission bits of a new object', '600')
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
    .option('--timeout <ms>', 'give up after this many milliseconds (exit status 1, ETIMEDOUT)', milliseconds)
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
