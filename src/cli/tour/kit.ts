// What every tour step works with: its messages in both languages, numbered
// narration, child processes running child.ts, and a scope that removes what
// the step made and kills and reaps its children — when the step ends, fails,
// times out, or the tour is interrupted.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { formatKey, IpcError } from '../../core/errors.js';
import { displayWidth, pad, wrap, type Style } from './text.js';

export type Lang = 'en' | 'zh';
export const LANGS: readonly Lang[] = ['en', 'zh'];

/** What every step's messages table has; write the Chinese table as `const zh: typeof en`, so no string is missing. */
export interface StepMessages {
  title: string;
}

export interface Step {
  readonly name: string;
  title(lang: Lang): string;
  /** The step fails when it takes longer. */
  readonly timeoutMs: number;
  run(t: Tour): Promise<void>;
}

const STEP_TIMEOUT_MS = 30_000;

export function defineStep<M extends StepMessages>(
  name: string,
  messages: Record<Lang, M>,
  run: (t: Tour, m: M) => Promise<void>,
  timeoutMs = STEP_TIMEOUT_MS,
): Step {
  return { name, timeoutMs, title: (lang) => messages[lang].title, run: (t) => run(t, messages[t.lang]) };
}

/**
 * The System V key of the tour's queue and semaphore set: fixed by the tour's
 * pid (below pid_max, 2^22), so a run's objects can be found — and removed —
 * by key whatever happened. Created exclusively: a foreign object with this
 * key is never touched.
 */
export function tourKey(pid: number): number {
  return 0x54000000 + pid;
}

/** Runs `create` (an exclusive create with the tour's key), explaining an EEXIST: someone else's object. */
export function createExclusive<T>(create: () => T, key: number): T {
  try {
    return create();
  } catch (e) {
    if (e instanceof IpcError && e.code === 'EEXIST') throw new Error(`System V key ${formatKey(key)} is already in use (ipcs): the tour leaves it alone`);
    throw e;
  }
}

/** How the tour names what it creates: everything carries its pid. */
export interface Names {
  /** `ipckit-tour-PID-`: every POSIX name and the work directory start with it. */
  readonly prefix: string;
  /** A private directory for FIFOs and socket files. */
  readonly workDir: string;
  readonly sysvKey: number;
}

export function posixName(names: Names, tag: string): string {
  return `/${names.prefix}${tag}`;
}

interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** A process running child.ts in one of its roles; it speaks JSON lines on stdout. */
export interface TourChild {
  readonly pid: number;
  readonly process: ChildProcess;
  /** The next JSON line it prints; rejects if it exits first or the step ends. */
  next<T = Record<string, unknown>>(): Promise<T>;
  /** Settles when it has exited and been reaped. */
  readonly exited: Promise<ExitStatus>;
  /** Resolves when it exits with status 0; rejects otherwise. */
  done(): Promise<void>;
}

const CHILD_SCRIPT = fileURLToPath(new URL('./child.js', import.meta.url));

type Cleanup = () => unknown;

/**
 * What one step made. close() kills its children, runs the cleanups (last
 * first; a cleanup of something the step already removed may fail, and that
 * is fine), and waits until the children are reaped. Anything deferred after
 * close() runs at once: a step still running after its timeout cannot leave
 * anything behind either.
 */
export class Scope {
  readonly #cleanups: Cleanup[] = [];
  readonly #children = new Set<TourChild>();
  readonly #abort = new AbortController();
  #closing: Promise<void> | null = null;

  get signal(): AbortSignal {
    return this.#abort.signal;
  }

  get closed(): boolean {
    return this.#closing !== null;
  }

  defer(cleanup: Cleanup): void {
    if (this.closed) void runQuietly(cleanup);
    else this.#cleanups.push(cleanup);
  }

  adopt(child: TourChild): void {
    if (this.closed) child.process.kill('SIGKILL');
    this.#children.add(child);
    void child.exited.then(() => this.#children.delete(child));
  }

  close(reason: Error = new Error('the step ended')): Promise<void> {
    this.#closing ??= this.#close(reason);
    return this.#closing;
  }

  async #close(reason: Error): Promise<void> {
    this.#abort.abort(reason);
    const children = [...this.#children];
    for (const c of children) c.process.kill('SIGKILL');
    for (const cleanup of this.#cleanups.splice(0).reverse()) await runQuietly(cleanup);
    // Reaped means gone from the process table (a child killed while SIGCHLD
    // was held is reaped once the cleanups above gave the signal back).
    await Promise.race([Promise.all(children.map((c) => c.exited)), new Promise((r) => setTimeout(r, 5000).unref())]);
  }
}

async function runQuietly(cleanup: Cleanup): Promise<void> {
  try {
    await cleanup();
  } catch {
    /* already removed by the step itself, or never made */
  }
}

export interface Output {
  readonly style: Style;
  /** Columns to fill. */
  readonly width: number;
  write(line: string): void;
}

export interface ChildOptions {
  /** Descriptors the child inherits as fd 3, 4, ... */
  fds?: number[];
}

/** The context a step runs in. */
export class Tour {
  readonly lang: Lang;
  readonly names: Names;
  readonly #scope: Scope;
  readonly #out: Output;
  #line = 0;

  constructor(lang: Lang, names: Names, scope: Scope, out: Output) {
    this.lang = lang;
    this.names = names;
    this.#scope = scope;
    this.#out = out;
  }

  /** Aborted when the step has to stop (timeout, Ctrl-C): pass it to waits that take one. */
  get signal(): AbortSignal {
    return this.#scope.signal;
  }

  /** A numbered line saying what happens, with the system calls that do it. */
  say(text: string, calls: string[] = []): void {
    if (this.#scope.closed) return; // a step that timed out or was interrupted has nothing more to say
    this.#line++;
    const head = `${String(this.#line).padStart(3)}. `;
    this.#print(head, text, calls.length ? `[${calls.join(', ')}]` : '');
  }

  /** What came out: data received, a state read from the kernel. Under the numbered line. */
  show(text: string): void {
    if (this.#scope.closed) return;
    this.#print('     → ', text, '', this.#out.style.result);
  }

  #print(head: string, text: string, calls: string, style = (s: string) => s): void {
    const indent = ' '.repeat(displayWidth(head));
    const width = Math.max(30, this.#out.width - indent.length);
    const lines = wrap(text, width);
    const styled = lines.map(style);
    if (calls) {
      const fits = displayWidth(lines[lines.length - 1]!) + 2 + displayWidth(calls) <= width;
      if (fits) styled[styled.length - 1] += `  ${this.#out.style.calls(calls)}`;
      else styled.push(this.#out.style.calls(calls));
    }
    styled.forEach((l, i) => this.#out.write(`${i === 0 ? head : indent}${l}`));
  }

  /** A small table under the current line, columns aligned by display width. */
  table(head: string[], rows: string[][], align: Array<'left' | 'right'>): void {
    if (this.#scope.closed) return;
    const all = [head, ...rows];
    const widths = head.map((_, i) => Math.max(...all.map((r) => displayWidth(r[i] ?? ''))));
    for (const row of all) this.#out.write(`     ${row.map((cell, i) => pad(cell, widths[i]!, align[i] === 'right')).join('   ').trimEnd()}`);
  }

  /** Runs `cleanup` when the step ends, however it ends (and at once if it already has). */
  defer(cleanup: Cleanup): void {
    this.#scope.defer(cleanup);
  }

  /** Starts a child process running child.ts as `role`. It is killed and reaped when the step ends. */
  child(role: string, args: Array<string | number> = [], options: ChildOptions = {}): TourChild {
    const proc = spawn(process.execPath, [CHILD_SCRIPT, role, ...args.map(String)], {
      stdio: ['ignore', 'pipe', 'inherit', ...(options.fds ?? [])] as never,
    });
    const child = wrapChild(proc, this.#scope.signal);
    this.#scope.adopt(child);
    return child;
  }
}

function wrapChild(proc: ChildProcess, signal: AbortSignal): TourChild {
  const exited = new Promise<ExitStatus>((resolve, reject) => {
    proc.once('error', reject);
    proc.once('exit', (code, sig) => resolve({ code, signal: sig }));
  });
  exited.catch(() => {});
  const queue: string[] = [];
  const waiting: Array<{ resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  let ended: Error | null = null;
  const fail = (e: Error) => {
    ended ??= e;
    for (const w of waiting.splice(0)) w.reject(ended);
  };
  const lines = createInterface({ input: proc.stdout! });
  lines.on('line', (line) => {
    const w = waiting.shift();
    if (w) w.resolve(line);
    else queue.push(line);
  });
  lines.on('close', () => fail(new Error(`child ${proc.pid} ended its output early`)));
  const onAbort = () => fail(signal.reason as Error);
  signal.addEventListener('abort', onAbort, { once: true });
  void exited.finally(() => signal.removeEventListener('abort', onAbort)).catch(() => {});
  return {
    pid: proc.pid ?? -1,
    process: proc,
    exited,
    next<T>() {
      const line = queue.shift();
      const text = line !== undefined ? Promise.resolve(line) : ended ? Promise.reject(ended) : new Promise<string>((resolve, reject) => waiting.push({ resolve, reject }));
      return text.then((l) => JSON.parse(l) as T);
    },
    async done() {
      const { code, signal: sig } = await exited;
      if (code !== 0) throw new Error(`child ${proc.pid} failed (${sig ?? `exit status ${code}`})`);
    },
  };
}
