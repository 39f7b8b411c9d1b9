// channel.fork(): starts a Node child and opens a channel to it, over a
// socketpair the child inherits (pipe) or a listener it connects to.
import { fork as forkProcess, type ChildProcess, type ForkOptions as NodeForkOptions } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { Socket } from 'node:net';
import { stateError, timeoutError, typeError } from '../core/errors.js';
import { checkInteger } from '../core/validate.js';
import type { ChannelForkOptions, ChannelServer, ForkedChannel, ListenOptions } from './index.js';
import type { Channel } from './channel.js';

/** The transports fork() offers; 'pipe' is the socketpair, the others a listener the child connects to. */
export const FORK_TRANSPORTS = ['shm', 'pipe', 'unix-abstract'] as const;

/** How fork() opens its end, given by the facade (which owns settings and listeners). */
export interface ForkEnds<T> {
  /** The channel over the parent's end of the socketpair. */
  overSocket(socket: Socket, timeoutMs: number): Promise<Channel<T>>;
  /** A listener for the child; `access` admits a child started as another user. */
  listen(url: string, access: ListenOptions<T>): Promise<ChannelServer<T>>;
}

/** What fork() resolves with; disposing it closes the channel (the child is left to exit by itself). */
function forked<T>(child: ChildProcess, channel: Channel<T>): ForkedChannel<T> {
  return { child, channel, [Symbol.asyncDispose]: () => channel.close() };
}

function exitedEarly(modulePath: string, code: number | null, signal: string | null): Error {
  return stateError('ERR_IPCKIT_HANDSHAKE', `child ${modulePath} exited (${signal ?? code}) before calling channel.parent()`);
}

/** `o`'s names are checked by the facade. */
export async function forkChannel<T>(modulePath: string, args: string[], o: ChannelForkOptions<T>, ends: ForkEnds<T>): Promise<ForkedChannel<T>> {
  const transport = o.transport ?? 'shm';
  if (!FORK_TRANSPORTS.includes(transport)) throw typeError('ERR_IPCKIT_INVALID_ARG_VALUE', "options.transport must be 'shm', 'pipe' or 'unix-abstract'");
  const timeout = checkInteger(o.timeout, 'options.timeout', 1, 2 ** 31 - 1, 30_000);
  const codecName = typeof o.codec === 'string' ? o.codec : o.codec === undefined ? 'json' : null;
  const base = o.fork ?? {};
  const env: NodeJS.ProcessEnv = { ...(base.env ?? process.env) };
  if (codecName) env.IPCKIT_CHANNEL_CODEC = codecName;
  if (o.maxMessageSize !== undefined) env.IPCKIT_CHANNEL_MAX = String(o.maxMessageSize);

  if (transport === 'pipe') {
    env.IPCKIT_CHANNEL = 'pipe:3';
    const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'pipe', 'ipc'] as NodeForkOptions['stdio'] });
    // The 'ipc' slot is required by fork(); we never use it. Keep it from holding the loop.
    child.channel?.unref();
    try {
      const channel = await Promise.race([
        ends.overSocket(child.stdio[3] as Socket, timeout),
        new Promise<never>((_, reject) => child.once('exit', (code, signal) => reject(exitedEarly(modulePath, code, signal)))),
      ]);
      return forked(child, channel);
    } catch (e) {
      child.kill('SIGKILL');
      throw e;
    }
  }

  const name = `fork-${process.pid}-${randomBytes(6).toString('hex')}`;
  const url = `${transport}:${name}`;
  // A child started as another user (fork.uid) is the one peer this listener exists for.
  const server = await ends.listen(url, typeof base.uid === 'number' ? { allowUids: [base.uid] } : {});
  env.IPCKIT_CHANNEL = url;
  const child = forkProcess(modulePath, args, { ...base, env, stdio: [...std3(base), 'ipc'] as NodeForkOptions['stdio'] });
  child.channel?.unref();
  try {
    const channel = await new Promise<Channel<T>>((resolve, reject) => {
      const timer = setTimeout(() => reject(timeoutError('fork', { path: modulePath }, `the child did not call channel.parent() within ${timeout} ms`)), timeout);
      const onExit = (code: number | null, signal: string | null) => {
        clearTimeout(timer);
        reject(exitedEarly(modulePath, code, signal));
      };
      child.once('exit', onExit);
      server.once('connection', (ch: Channel<T>) => {
        clearTimeout(timer);
        child.off('exit', onExit);
        resolve(ch);
      });
    });
    return forked(child, channel);
  } catch (e) {
    child.kill('SIGKILL');
    throw e;
  } finally {
    await server.close();
  }
}

/** stdio 0-2 from the caller's fork options (fork() itself needs an 'ipc' slot, which we add and never use). */
function std3(base: NodeForkOptions): unknown[] {
  const s = base.stdio;
  if (Array.isArray(s)) return s.slice(0, 3).concat(['inherit', 'inherit', 'inherit']).slice(0, 3);
  if (typeof s === 'string') return [s, s, s];
  return ['inherit', 'inherit', 'inherit'];
}
