// `ipckit` as a real process (node dist/cli/main.js) for the CLI tests:
// run one to completion, or start one and follow what it prints.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after } from 'node:test';

export const MAIN = fileURLToPath(new URL('../../dist/cli/main.js', import.meta.url));

export interface CliResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: Buffer;
  stderr: string;
}

export interface CliProcess {
  child: ChildProcess;
  /** Resolves with the first stderr line matching `pattern` (already printed or still to come). */
  stderrLine(pattern: RegExp): Promise<string>;
  done: Promise<CliResult>;
}

const running = new Set<ChildProcess>();
after(() => {
  for (const child of running) child.kill('SIGKILL');
});

/** Starts `ipckit ...` (or `command` with `args`), feeding `input` on stdin (then closing it). */
export function startCli(args: string[], options: { input?: Uint8Array | string; command?: string; env?: NodeJS.ProcessEnv } = {}): CliProcess {
  const [cmd, argv] = options.command ? [options.command, args] : [process.execPath, [MAIN, ...args]];
  const child = spawn(cmd, argv, { stdio: ['pipe', 'pipe', 'pipe'], env: options.env ?? process.env });
  running.add(child);
  const out: Buffer[] = [];
  let stderr = '';
  let closed = false;
  const waiters: Array<{ pattern: RegExp; resolve: (line: string) => void; reject: (e: Error) => void }> = [];
  const check = () => {
    for (const w of [...waiters]) {
      const line = stderr.split('\n').find((l, i, all) => i < all.length - 1 && w.pattern.test(l));
      if (line !== undefined) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve(line);
      }
    }
  };
  child.stdout!.on('data', (c: Buffer) => out.push(c));
  child.stderr!.on('data', (c: Buffer) => {
    stderr += c.toString();
    check();
  });
  child.stdin!.on('error', () => {});
  child.stdin!.end(options.input ?? '');
  const done = new Promise<CliResult>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => {
      closed = true;
      running.delete(child);
      for (const w of waiters.splice(0)) w.reject(new Error(`${cmd} ${argv.join(' ')} exited (${signal ?? code}) before printing ${w.pattern}; stderr: ${stderr}`));
      resolve({ code, signal, stdout: Buffer.concat(out), stderr });
    });
  });
  return {
    child,
    done,
    stderrLine(pattern) {
      return new Promise((resolve, reject) => {
        waiters.push({ pattern, resolve, reject });
        check();
        if (closed && waiters.length > 0) {
          waiters.splice(0);
          reject(new Error(`${cmd} ${argv.join(' ')} had exited without printing ${pattern}; stderr: ${stderr}`));
        }
      });
    },
  };
}

/** Runs `ipckit ...` to completion. */
export function runCli(args: string[], options: { input?: Uint8Array | string; command?: string; env?: NodeJS.ProcessEnv } = {}): Promise<CliResult> {
  return startCli(args, options).done;
}

/** A System V key as the CLI prints it. */
export const hex = (key: number) => `0x${(key >>> 0).toString(16).padStart(8, '0')}`;

/** Runs `ipckit ARGS` to its end: exit code and output as text. */
export async function ipckit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runCli(args);
  return { code: r.code, stdout: r.stdout.toString(), stderr: r.stderr };
}

/** Runs `ipckit ARGS`, which must exit 0 with nothing on stderr; its stdout. */
export async function ok(args: string[]): Promise<string> {
  const r = await ipckit(args);
  assert.equal(r.code, 0, `ipckit ${args.join(' ')} failed: ${r.stderr}`);
  assert.equal(r.stderr, '', `ipckit ${args.join(' ')} printed to stderr`);
  return r.stdout;
}
