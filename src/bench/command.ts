// The `bench` command line (commander), shared by `npm run bench`
// (src/bench/main.ts) and `ipckit bench` (src/cli/main.ts adds it with
// `program.addCommand(benchCommand())`).
import { Command, InvalidArgumentError } from 'commander';
import { parseBytes } from '../cli/args.js';
import { CASES } from './registry.js';
import { DEFAULT_COUNT, DEFAULT_SIZES, DEFAULT_TRIALS, runBench } from './run.js';

/** "64,4096,64k,1m" → bytes, with the same units as every other ipckit size option. */
export function parseSizes(text: string): number[] {
  return text.split(',').map((part) => {
    let n = NaN;
    try {
      n = parseBytes(part, 'size');
    } catch {
      // reported below, in this command's own words
    }
    if (!(n >= 1)) throw new InvalidArgumentError(`'${part}' is not a size in bytes (e.g. 64, 4096, 64k, 1m)`);
    return n;
  });
}

function parseCount(text: string): number {
  const n = Number(text.replace(/_/g, ''));
  if (!Number.isSafeInteger(n) || n < 1) throw new InvalidArgumentError(`'${text}' is not a positive integer`);
  return n;
}

/** "shm,unix" → the names, each one a known transport (a typo is a usage error, before anything runs). */
function parseTransports(text: string): string[] {
  const names = text
    .split(',')
    .map((t) => t.trim())
    .filter(Boolean);
  const unknown = names.filter((n) => !CASES.some((c) => c.transport === n));
  if (unknown.length) throw new InvalidArgumentError(`unknown transport ${unknown.map((n) => `'${n}'`).join(', ')} (see --list)`);
  return names;
}

interface CommandOptions {
  transports?: string[];
  size: number[];
  count: number;
  trials: number;
  json?: boolean;
  markdown?: boolean;
  pin?: boolean;
  list?: boolean;
  report?: string;
}

export function benchCommand(name = 'bench'): Command {
  return new Command(name)
    .description('round-trip latency and one-way throughput of each transport, every trial in fresh processes')
    .option('--transports <names>', 'comma-separated transports (default: all; see --list)', parseTransports)
    .option('--size <bytes>', 'comma-separated message sizes, e.g. 64,4096,64k,1m', parseSizes, DEFAULT_SIZES)
    .option('--count <n>', 'timed round trips per trial (fewer for large sizes)', parseCount, DEFAULT_COUNT)
    .option('--trials <n>', 'trials per transport and size, each in fresh processes; figures are medians over trials', parseCount, DEFAULT_TRIALS)
    .option('--json', 'print one JSON array of rows instead of the table')
    .option('--markdown', 'print the table as Markdown')
    .option('--pin', 'pin the two peers to different CPUs with taskset (default: not pinned)')
    .option('--report <file>', 'also write a self-contained HTML report (table and charts) to <file>')
    .option('--list', 'list the transports and exit')
    .action(async (opts: CommandOptions) => {
      if (opts.list) {
        for (const c of CASES) process.stdout.write(`${c.transport.padEnd(24)} ${c.description}\n`);
        return;
      }
      const { transports, size: sizes, count, trials, json, markdown, pin, report } = opts;
      await runBench({ transports, sizes, count, trials, json, markdown, pin, report });
    });
}
