// Shared test utilities: unique names, peer processes speaking JSON lines,
// and small C programs compiled on the fly as independent peers.
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { after } from 'node:test';
import { fileURLToPath } from 'node:url';

export const fixturesDir = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

export { uniqueKey, uniqueName } from './unique.js';

// Peers still running when a test file ends (a failed assertion skipped their
// shutdown) would keep the runner waiting: end them in teardown.
const livePeers = new Set<ChildProcess>();
after(() => {
  for (const child of livePeers) child.kill('SIGKILL');
});

/** How long a peer's end (exit, end of its output) waits for the other half before next() gives up. */
const EXIT_DRAIN_MS = 1000;

export interface Peer {
  child: ChildProcess;
  /** Resolves with the next JSON line the peer prints on stdout; rejects, naming the exit code or signal, once the peer has ended without printing one. */
  next<T = Record<string, unknown>>(): Promise<T>;
  /** Sends one JSON line to the peer's stdin. */
  send(message: unknown): void;
  /** Resolves when the peer exits. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Starts a fixture script (test/fixtures/NAME.js) or any command as a peer process. */
export function startPeer(command: string, args: string[] = [], options: SpawnOptions = {}): Peer {
  const isFixture = !command.includes('/') && !['python3', 'sh', 'setpriv'].includes(command) && !command.startsWith('cc-');
  const [cmd, argv] = isFixture ? [process.execPath, [join(fixturesDir, `${command}.js`), ...args]] : [command, args];
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'inherit'], ...options });
  livePeers.add(child);
  const queue: unknown[] = [];
  const waiting: Array<{ resolve: (v: unknown) => void; reject: (e: Error) => void }> = [];
  let ended: Error | null = null;
  let exit: { code: number | null; signal: NodeJS.Signals | null } | null = null;
  let outputClosed = !child.stdout;
  // Once the peer has exited and its output is read to the end, or one of the
  // two has happened and the other has not followed within EXIT_DRAIN_MS
  // (a grandchild holding stdout open, or a peer that closed its stdout and
  // keeps running), a next() that nothing will answer rejects.
  let drain: NodeJS.Timeout | undefined;
  const end = () => {
    if (ended) return;
    clearTimeout(drain);
    const how = !exit
      ? 'closed its output'
      : exit.signal
        ? `was killed by ${exit.signal}`
        : `exited with code ${exit.code}`;
    ended = new Error(`peer ${command} ${how} before answering${exit && !outputClosed ? ' (its output is still held open by another process)' : ''}`);
    for (const w of waiting.splice(0)) w.reject(ended);
  };
  const settleSoon = () => {
    if (exit && outputClosed) end();
    else drain ??= setTimeout(end, EXIT_DRAIN_MS).unref();
  };
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      livePeers.delete(child);
      exit = { code, signal };
      settleSoon();
      resolve(exit);
    });
  });
  if (child.stdout) {
    const lines = createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      let msg: unknown;
      try {
        msg = JSON.parse(line);
      } catch {
        msg = { text: line };
      }
      const w = waiting.shift();
      if (w) w.resolve(msg);
      else queue.push(msg);
    });
    lines.on('close', () => {
      outputClosed = true;
      settleSoon();
    });
  }
  return {
    child,
    exited,
    next<T>() {
      if (queue.length) return Promise.resolve(queue.shift() as T);
      if (ended) return Promise.reject(ended);
      return new Promise<T>((resolve, reject) => waiting.push({ resolve: resolve as (v: unknown) => void, reject }));
    },
    send(message: unknown) {
      child.stdin?.write(`${JSON.stringify(message)}\n`);
    },
  };
}

/** Runs a command to completion and returns its output; throws on failure. */
export function run(cmd: string, args: string[], input?: string): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  if (r.error) throw r.error;
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

/**
 * The names or ids of what a test file makes: each is removed once its tests
 * are done, also when one failed midway (one a test removed itself is skipped).
 */
export function removedAfter<T>(remove: (made: T) => void): Set<T> {
  const made = new Set<T>();
  after(() => {
    for (const m of made) {
      try {
        remove(m);
      } catch {
        /* removed by the test */
      }
    }
  });
  return made;
}

/** All a stream gives until it ends, as text. */
export function collect(stream: NodeJS.ReadableStream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.on('data', (d) => (text += d.toString()));
    stream.on('end', () => resolve(text));
    stream.on('error', reject);
  });
}

export function has(command: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${command}`], { stdio: 'ignore' }).status === 0;
}

/**
 * Why `unshare <flags> true` cannot run here (not installed, or no
 * permission to make those namespaces), or undefined when it can: a test
 * that needs a private namespace skips with this reason instead of passing.
 */
export function namespaceDenied(...flags: string[]): string | undefined {
  if (!has('unshare')) return 'unshare (util-linux) not installed';
  const probe = spawnSync('unshare', [...flags, 'true'], { encoding: 'utf8' });
  return probe.status === 0 ? undefined : `no permission to make a namespace here (unshare ${flags.join(' ')}): ${probe.stderr.trim()}`;
}

/** Compiles a C program into a temporary directory; returns the binary's path and a cleanup. */
export function compileC(source: string): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'ipckit-cc-'));
  const src = join(dir, 'peer.c');
  const bin = join(dir, 'peer');
  writeFileSync(src, source);
  run('cc', ['-O1', '-o', bin, src, '-lrt', '-lpthread']);
  return { path: bin, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Whether this process may drop capabilities to prove permission checks (needs root). */
export const canDropPrivileges = process.getuid?.() === 0 && has('setpriv');

/**
 * Why a fixture cannot run as another user here, or null if it can: besides
 * root and setpriv, every directory above the checkout must let others in (a
 * clone under a 0700 directory, such as one mktemp -d makes, keeps them out).
 */
export const otherUserFixtureSkip: string | null = !canDropPrivileges
  ? 'needs root and setpriv to run a peer as another user'
  : spawnSync('setpriv', ['--reuid=65534', '--regid=65534', '--clear-groups', '--', 'test', '-r', join(fixturesDir, 'hostile-peer.js')]).status !== 0
    ? `another user cannot read the checkout (a directory above ${fixturesDir} is closed to others, e.g. a 0700 mktemp -d): its fixtures cannot run as that user`
    : null;

/**
 * Arguments that run a command as root *without* capabilities, so that
 * permission bits apply to it as to any unprivileged process. Unlike switching
 * to another uid, this keeps access to the checkout wherever it lives.
 */
export function withoutCapabilities(cmd: string, args: string[]): [string, string[]] {
  return ['setpriv', ['--inh-caps=-all', '--bounding-set=-all', '--', cmd, ...args]];
}

/**
 * Checks that `call` refuses a misspelt option: a TypeError with code
 * ERR_IPCKIT_UNKNOWN_OPTION, thrown or as a rejected Promise, whose message
 * suggests `nearest` (or suggests nothing when `nearest` is null).
 */
export async function assertUnknownOption(call: () => unknown, nearest: string | null, label = ''): Promise<void> {
  const check = (e: unknown) => {
    assert.ok(e instanceof TypeError, `${label}: not a TypeError: ${String(e)}`);
    assert.equal(e.name, 'TypeError', label);
    assert.equal((e as { code?: string }).code, 'ERR_IPCKIT_UNKNOWN_OPTION', label);
    if (nearest === null) assert.doesNotMatch(e.message, /did you mean/, label);
    else assert.match(e.message, new RegExp(`\\(did you mean ${nearest}\\?\\)`), label);
    return true;
  };
  let result: unknown;
  try {
    result = call();
  } catch (e) {
    check(e);
    return;
  }
  assert.ok(result instanceof Promise, `${label}: neither threw nor returned a Promise`);
  await assert.rejects(result, check);
}
