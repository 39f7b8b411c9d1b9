// Ctrl-C, `kill` and a closed terminal for the commands that make things
// (a listener's socket file, a FIFO, a connection's queues): the cleanups
// registered here run first, then the process exits with the status a shell
// gives a process killed by that signal (128 + n: 130 for SIGINT, 143 for
// SIGTERM), so `ipckit recv ...; echo $?` reads the same either way.
import { constants } from 'node:os';

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
/** A cleanup that hangs (a peer that stopped reading) must not keep the process from exiting. */
const CLEANUP_MS = 2000;

const cleanups = new Set<() => unknown>();
let caught: NodeJS.Signals | null = null;
let installed = false;

/** 128 + the signal's number. */
function signalStatus(signal: NodeJS.Signals): number {
  return 128 + constants.signals[signal];
}

/** Whether a signal is being handled: errors of the work it cut short are not reported. */
export function interrupted(): boolean {
  return caught !== null;
}

async function onSignal(signal: NodeJS.Signals): Promise<void> {
  // A second Ctrl-C while cleaning up: stop now.
  if (caught) process.exit(signalStatus(caught));
  caught = signal;
  setTimeout(() => process.exit(signalStatus(signal)), CLEANUP_MS).unref();
  await Promise.allSettled([...cleanups].map(async (fn) => fn()));
  process.exit(signalStatus(signal));
}

/**
 * Until the returned function is called, SIGINT/SIGTERM/SIGHUP run
 * `cleanup` (with every other registered one, at most 2 s in all) and exit
 * with 128 + the signal's number.
 */
export function cleanupOnSignal(cleanup: () => unknown): () => void {
  if (!installed) {
    installed = true;
    for (const s of SIGNALS) process.on(s, (sig: NodeJS.Signals) => void onSignal(sig));
  }
  cleanups.add(cleanup);
  return () => cleanups.delete(cleanup);
}
