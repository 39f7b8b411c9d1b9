// `ipckit signal list|send|wait`: the signal table, sending with a payload,
// and waiting for signals while printing who sent them.
import type { Command } from 'commander';
import * as signals from '../signals/signals.js';
import type { SignalInfo } from '../signals/signals.js';
import { msOption, UsageError } from './args.js';
import { formatTable } from './table.js';

function integer(text: string, what: string): number {
  if (!/^-?\d+$/.test(text.trim())) throw new UsageError(`${what} must be an integer, got ${JSON.stringify(text)}`);
  return Number(text);
}

function signalNumber(text: string): number {
  try {
    return signals.toNumber(text);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
}

function list(o: { json?: boolean }): void {
  const table = signals.list();
  if (o.json) {
    process.stdout.write(`${JSON.stringify(table, null, 2)}\n`);
    return;
  }
  const columns = [{ header: 'NUM', align: 'right' as const }, { header: 'NAME' }, { header: 'ACTION' }, { header: 'CATCHABLE' }, { header: 'DESCRIPTION' }];
  const rows = table.map((r) => [String(r.number), r.name, r.action, r.catchable ? 'yes' : 'no', r.description]);
  process.stdout.write(formatTable(columns, rows));
}

function send(pidText: string, signalText: string, o: { value?: string }): void {
  const pid = integer(pidText, 'pid');
  const signal = signalText === '0' ? 0 : signalNumber(signalText);
  const value = o.value === undefined ? undefined : integer(o.value, '--value');
  if (!signals.send(pid, signal, value === undefined ? {} : { value })) {
    process.stderr.write(`ipckit: no such process ${pid}\n`);
    process.exitCode = 1;
  }
}

function describe(info: SignalInfo): string {
  const value = info.value !== undefined ? ` value ${info.value}` : '';
  const status = info.status !== undefined ? ` status ${info.status}` : '';
  return `${info.signal} (${info.number}) from pid ${info.pid} uid ${info.uid} code ${info.code}${value}${status}\n`;
}

/** Exit status for `wait --timeout` running out, as timeout(1) uses. */
const TIMED_OUT = 124;

async function wait(
  names: string[],
  o: { count: string; timeout?: number; json?: boolean },
): Promise<void> {
  const numbers = names.map((n) => signalNumber(n));
  const count = integer(o.count, '--count');
  if (count < 0) throw new UsageError('--count must be 0 (no limit) or more');
  const abort = new AbortController();
  const timedOut = new Error('timed out');
  const timer = o.timeout === undefined ? undefined : setTimeout(() => abort.abort(timedOut), o.timeout);
  // Installed (blocked and queued) from here on: only now may senders start.
  let iterator: ReturnType<typeof signals.watch>;
  try {
    iterator = signals.watch(numbers, { signal: abort.signal });
  } catch (e) {
    clearTimeout(timer);
    // SIGKILL, SIGSTOP: a signal nobody can wait for is a mistake on the command line.
    if ((e as { code?: string }).code === 'ERR_IPCKIT_SIGNAL_UNCATCHABLE') throw new UsageError((e as Error).message);
    throw e;
  }
  if (o.json) process.stdout.write(`${JSON.stringify({ ready: true, pid: process.pid })}\n`);
  else process.stderr.write(`ipckit: pid ${process.pid} waiting for ${numbers.map((n) => signals.toName(n)).join(', ')}\n`);
  let received = 0;
  try {
    for await (const info of iterator) {
      if (o.json) {
        const { signal, number, pid, uid, code } = info;
        const line: Record<string, unknown> = { signal, number, pid, uid, value: info.value ?? null, code };
        if (info.status !== undefined) line.status = info.status;
        process.stdout.write(`${JSON.stringify(line)}\n`);
      } else {
        process.stdout.write(describe(info));
      }
      if (count > 0 && ++received >= count) break;
    }
  } catch (e) {
    if ((e as { cause?: unknown }).cause !== timedOut) throw e;
    process.stderr.write(`ipckit: timed out after ${o.timeout} ms (${received} signal(s) received)\n`);
    process.exitCode = TIMED_OUT;
  } finally {
    clearTimeout(timer);
    iterator.close();
  }
}

export function register(program: Command): void {
  const signal = program.command('signal').description('send, wait for and list signals (with payload and sender pid/uid)');

  signal
    .command('list')
    .description('every signal of this system with its default action (as in man 7 signal)')
    .option('--json', 'print the table as JSON')
    .action(list);

  signal
    .command('send')
    .description('send a signal: kill(2), or sigqueue(3) with --value; exit status 1 if there is no such process')
    .argument('<pid>', 'target process id')
    .argument('<signal>', 'name or number: SIGUSR1, USR1, 10, SIGRTMIN+3, SIGRTMAX-1, or 0 to test that pid exists')
    .option('--value <n>', 'integer payload (sival_int, 32-bit), sent with sigqueue')
    .action(send);

  signal
    .command('wait')
    .description(
      'wait for signals and print each one with the sender pid/uid, si_code and value; ' +
        `exit status ${TIMED_OUT} if --timeout runs out`,
    )
    .argument('<signal...>', 'signals to take, e.g. SIGUSR1 SIGRTMIN+1')
    .option('--count <n>', 'exit after this many signals (0: no limit)', '1')
    .option('--timeout <ms>', `give up after this many ms (exit status ${TIMED_OUT})`, msOption)
    .option('--json', 'first line {"ready":true,"pid":N} once the signals are taken, then one JSON object per signal')
    .action(wait);
}
