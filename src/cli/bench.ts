// `ipckit bench` (commander; src/cli/main.ts adds it with
// `program.addCommand(benchCommand())`), which `npm run bench` runs too. The
// harness it drives is src/bench/, which knows nothing of the CLI.
import { Command, InvalidArgumentError } from 'commander';
import { parseBytes } from './args.js';
import { NOT_INSTALLED } from '../bench/optional-package.js';
import { CASES, COMPARE_CASES, findCase } from '../bench/registry.js';
import { DEFAULT_COUNT, DEFAULT_SIZES, DEFAULT_TRIALS, runBench } from '../bench/run.js';
import type { BenchCase } from '../bench/types.js';

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
  const unknown = names.filter((n) => !findCase(n));
  if (unknown.length) throw new InvalidArgumentError(`unknown transport ${unknown.map((n) => `'${n}'`).join(', ')} (see --list)`);
  return names;
}

/** '(installed)', '(not installed)' or '(installed, fails to load: ...)' for a case measuring another package. */
function installState(c: BenchCase): string {
  const why = c.unavailable?.();
  if (!why) return '(installed)';
  return why.endsWith(NOT_INSTALLED) ? '(not installed)' : `(installed, ${why.replace(`${c.optionalPackage} `, '')})`;
}

interface CommandOptions {
  transports?: string[];
  compare?: boolean;
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
    .option('--compare', 'also measure the libraries you could use instead (zeromq, node-ipc), each skipped when not installed')
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
        process.stdout.write('\nwith --compare:\n');
        for (const c of COMPARE_CASES) process.stdout.write(`${c.transport.padEnd(24)} ${installState(c)} ${c.description}\n`);
        return;
      }
      const { transports, compare, size: sizes, count, trials, json, markdown, pin, report } = opts;
      await runBench({ transports, compare, sizes, count, trials, json, markdown, pin, report });
    });
}
