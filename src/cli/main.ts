#!/usr/bin/env node
// The `ipckit` command. Each mechanism registers its own subcommands from its
// own module (src/cli/<mechanism>.ts exporting register(program)); adding one
// is an import and a call below.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { IpcError } from '../errors.js';
import { benchCommand } from '../bench/command.js';
import { register as registerLs } from './ls.js';
import { register as registerRm } from './stale.js';
import { register as registerShm } from './shm.js';
import { register as registerSem } from './sem.js';
import { register as registerMq } from './mq.js';
import { register as registerSignal } from './signal.js';
import { register as registerFifo } from './fifo.js';
import { register as registerUnix } from './unix.js';
import { register as registerChannel } from './channel.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
const debug = process.env.IPCKIT_DEBUG === '1';

/** `ipckit: message` on stderr, exit status 1; the stack only with IPCKIT_DEBUG=1. */
function report(e: unknown): void {
  const err = e instanceof Error ? e : new Error(String(e));
  process.stderr.write(`ipckit: ${err.message}\n`);
  if (debug) {
    process.stderr.write(`${err.stack ?? ''}\n`);
    if (err instanceof IpcError) process.stderr.write(`${JSON.stringify({ ...err })}\n`);
  }
  process.exitCode = 1;
}

// `ipckit shm read /x | head -c 10`: a reader that stops early is not an error.
process.stdout.on('error', (e: NodeJS.ErrnoException) => {
  if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  report(e);
});

const program = new Command()
  .name('ipckit')
  .description('Linux IPC objects from the command line')
  .version(pkg.version)
  // Before any subcommand is added: subcommands copy these settings.
  .configureOutput({ outputError: (text, write) => write(text.replace(/^error: /, 'ipckit: ')) })
  .showHelpAfterError('(add --help for usage)');

registerShm(program);
registerSem(program);
registerMq(program);
registerLs(program);
registerRm(program);
registerSignal(program);
registerFifo(program);
registerUnix(program);
registerChannel(program);
program.addCommand(benchCommand());

program.parseAsync(process.argv).catch(report);
