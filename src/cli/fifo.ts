// `ipckit fifo create|cat|write|rm`: named pipes from the shell, opened as a
// blocking open(2) opens a FIFO (cat waits for a writer, write waits for a
// reader) with an optional --timeout, and the `ls` section listing FIFOs in
// --path directories.
import type { Command } from 'commander';
import * as fifo from '../pipes/fifo.js';
import { modeOption, msOption } from './args.js';
import { readStdin } from './io.js';
import { addLsProvider } from './ls.js';
import { fifoProvider } from './fifo-ls.js';

interface OpenFlags {
  timeout?: number;
  wait?: boolean;
}

export function register(program: Command): void {
  const cmd = program.command('fifo').description('named pipes (mkfifo): create, read, write, remove');

  cmd
    .command('create')
    .description('create a FIFO (mkfifo)')
    .argument('<path>', 'where to create it')
    .option('--mode <octal>', 'permission bits, applied exactly', modeOption, '0600')
    .option('--exist-ok', 'succeed if a FIFO is already there')
    .action((path: string, o: { mode: string; existOk?: boolean }) => {
      fifo.create(path, { mode: o.mode, existOk: !!o.existOk });
    });

  cmd
    .command('cat')
    .description('read the FIFO to stdout until every writer has closed it (waits for a writer)')
    .argument('<path>', 'the FIFO')
    .option('--timeout <ms>', 'give up if no writer opens it within this many ms', msOption)
    .option('--no-wait', 'do not wait for a writer: read whatever comes')
    .action(async (path: string, o: OpenFlags) => {
      const stream = await fifo.open(path, 'r', { timeout: o.timeout, wait: o.wait !== false });
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.on('end', resolve);
        stream.pipe(process.stdout, { end: false });
      });
    });

  cmd
    .command('write')
    .description('write --data (or stdin) into the FIFO (waits for a reader)')
    .argument('<path>', 'the FIFO')
    .option('--data <text>', 'what to write (default: stdin)')
    .option('--timeout <ms>', 'give up if no reader opens it within this many ms', msOption)
    .action(async (path: string, o: OpenFlags & { data?: string }) => {
      // Read stdin first: a writer should not hold the FIFO open while its own input is pending.
      const data = o.data !== undefined ? Buffer.from(o.data) : await readStdin('--data');
      const stream = await fifo.open(path, 'w', { timeout: o.timeout });
      await new Promise<void>((resolve, reject) => {
        stream.on('error', reject);
        stream.end(data, () => resolve());
      });
    });

  cmd
    .command('rm')
    .description('remove a FIFO (refuses anything else)')
    .argument('<path>', 'the FIFO')
    .action((path: string) => fifo.remove(path));

  addLsProvider(fifoProvider);
}
