// `ipckit ls` section for Unix domain sockets; the socket commands themselves
// are what socat already does well.
import type { Command } from 'commander';
import { addLsProvider } from './ls.js';
import { unixSocketProvider } from './fifo-ls.js';

export function register(_program: Command): void {
  addLsProvider(unixSocketProvider);
}
