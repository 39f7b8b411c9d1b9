#!/usr/bin/env node
// The `ipckit` command. Each mechanism registers its own subcommands from its
// own module (src/cli/<mechanism>.ts exporting register(program)); adding one
// is an entry in MODULES below and, for its top-level command names, in
// COMMANDS.
//
// A command line imports only the modules it needs: importing all of them
// (the whole library, the channel transports and every bench case, some
// 190 files) took longer than the work of most commands (0.25 s of module
// loading on a machine where Node itself starts in 0.15 s).
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { applyExitConventions, report } from './exit.js';
import { OPTIONAL_VALUE_FLAGS, withOptionalValuesSeparated } from './args.js';

type Register = (program: Command) => void;

/** Every module that registers commands, in the order `ipckit --help` lists them. */
const MODULES: ReadonlyArray<readonly [string, () => Promise<Register>]> = [
  ['shm', async () => (await import('./shm.js')).register],
  ['sem', async () => (await import('./sem.js')).register],
  ['mq', async () => (await import('./mq.js')).register],
  ['ls', async () => (await import('./ls.js')).register],
  ['stale', async () => (await import('./stale.js')).register],
  ['signal', async () => (await import('./signal.js')).register],
  ['fifo', async () => (await import('./fifo.js')).register],
  ['unix', async () => (await import('./unix.js')).register],
  ['channel', async () => (await import('./channel.js')).register],
  ['bridge', async () => (await import('./bridge.js')).register],
  ['limits', async () => (await import('./limits.js')).register],
  ['tour', async () => (await import('./tour.js')).register],
  ['bench', async () => {
    const { benchCommand } = await import('./bench.js');
    return (program) => void program.addCommand(benchCommand());
  }],
];

/**
 * The modules each top-level command needs. `ls` and `rm` list what the
 * mechanisms' modules register as object kinds (addLsProvider). Anything
 * else (no command, `help`, a misspelt name that wants a suggestion) loads
 * every module.
 */
const LISTED = ['shm', 'sem', 'mq', 'fifo', 'unix'];
const COMMANDS: Readonly<Record<string, readonly string[]>> = {
  shm: ['shm'],
  sem: ['sem'],
  mq: ['mq'],
  ls: [...LISTED, 'ls'],
  rm: [...LISTED, 'ls', 'stale'],
  signal: ['signal'],
  fifo: ['fifo'],
  send: ['channel'],
  recv: ['channel'],
  bridge: ['bridge'],
  limits: ['limits'],
  tour: ['tour'],
  bench: ['bench'],
};

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// `ipckit shm read /x | head -c 10`: a reader that stops early is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  report(e);
});

const program = new Command()
  .name('ipckit')
  .description('Linux IPC objects from the command line')
  .version(pkg.version)
  .addHelpText('after', '\nExit status: 0 success, 1 the operation failed, 2 a usage error, 128+N after signal N.\nEvery duration is in milliseconds (ms). See docs/cli.md.');

// The program has no options that take a value, so the first word that is not an option is the command.
const command = process.argv.slice(2).find((word) => !word.startsWith('-'));
const needed = (command !== undefined && Object.hasOwn(COMMANDS, command) ? COMMANDS[command] : undefined) ?? MODULES.map(([name]) => name);
const chosen = MODULES.filter(([name]) => needed.includes(name));
for (const register of await Promise.all(chosen.map(([, load]) => load()))) register(program);
applyExitConventions(program);

program.parseAsync(withOptionalValuesSeparated(process.argv, OPTIONAL_VALUE_FLAGS)).catch(report);
