// A nats-server started as a child process and known to be ready: the NATS
// bench cases start one per trial, and the tests one per test file (with
// JetStream and a store of their own). Ready means the server's log said so.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';

/** How long a server may take to say it is ready. */
const READY_MS = 10_000;

let setpriv: boolean | undefined;
function hasSetpriv(): boolean {
  setpriv ??= spawnSync('setpriv', ['--help'], { stdio: 'ignore' }).status === 0;
  return setpriv;
}

/** A loopback port nobody listens on now. */
export async function freeLoopbackPort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve, reject) => probe.once('error', reject).listen(0, '127.0.0.1', resolve));
  const port = (probe.address() as { port: number }).port;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}

export interface RunningNatsServer {
  child: ChildProcess;
  /** Resolves when the process has exited. */
  exited: Promise<void>;
}

/**
 * `nats-server -a 127.0.0.1 -p PORT ...args` (a later `-a ADDRESS` in args
 * wins), resolved once its log says it is ready (rejects if it exits first).
 * `wrap`: a command that execs the rest, such as `ip netns exec NS`.
 */
export async function spawnNatsServer(port: number, args: string[] = [], wrap: string[] = []): Promise<RunningNatsServer> {
  const argv = ['nats-server', '-a', '127.0.0.1', '-p', String(port), ...args];
  // With setpriv (util-linux), the server dies with the process that started it, even a killed one.
  const [cmd, ...rest] = [...wrap, ...(hasSetpriv() ? ['setpriv', '--pdeathsig', 'KILL', ...argv] : argv)];
  const child = spawn(cmd!, rest, { stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let log = '';
  await new Promise<void>((resolve, reject) => {
    const fail = (e: Error) => {
      clearTimeout(timer);
      child.stderr!.removeAllListeners('data');
      child.kill('SIGKILL');
      reject(e);
    };
    const timer = setTimeout(() => fail(new Error(`nats-server did not get ready within ${READY_MS} ms:\n${log}`)), READY_MS);
    const early = (code: number | null, signal: string | null) => fail(new Error(`nats-server exited (${signal ?? code}) before it was ready:\n${log}`));
    child.once('exit', early);
    child.stderr!.on('data', (chunk: Buffer) => {
      log += chunk.toString();
      if (!log.includes('Server is ready')) return;
      clearTimeout(timer);
      child.off('exit', early);
      child.stderr!.removeAllListeners('data');
      // Keep draining its log so a chatty server never blocks on a full pipe.
      child.stderr!.resume();
      resolve();
    });
  });
  return { child, exited };
}
