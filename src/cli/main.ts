#!/usr/bin/env node
// The `ipckit` command. Each mechanism registers its own subcommands from its
// own module (src/cli/<mechanism>.ts exporting register(program)); adding one
// is an import and a call below.
import { readFileSync } from 'node:fs';
import { Command } from 'commander';
import { benchCommand } from './bench.js';
import { applyExitConventions, report } from './exit.js';
import { withOptionalValuesSeparated } from './args.js';
import { register as registerLs } from './ls.js';
import { register as registerRm } from './stale.js';
import { register as registerShm } from './shm.js';
import { register as registerSem } from './sem.js';
import { register as registerMq } from './mq.js';
import { register as registerSignal } from './signal.js';
import { register as registerFifo } from './fifo.js';
import { register as registerUnix } from './unix.js';
import { register as registerChannel, OPTIONAL_VALUE_FLAGS } from './channel.js';
import { register as registerBridge } from './bridge.js';
import { register as registerLimits } from './limits.js';
import { register as registerTour } from './tour.js';

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

registerShm(program);
registerSem(program);
registerMq(program);
registerLs(program);
registerRm(program);
registerSignal(program);
registerFifo(program);
registerUnix(program);
registerChannel(program);
registerBridge(program);
registerLimits(program);
registerTour(program);
program.addCommand(benchCommand());
applyExitConventions(program);

program.parseAsync(withOptionalValuesSeparated(process.argv, OPTIONAL_VALUE_FLAGS)).catch(report);
