// Runs the built CLI (dist/cli/main.js) as a real process, for the CLI tests.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const MAIN = fileURLToPath(new URL('../dist/cli/main.js', import.meta.url));

/** A System V key as the CLI prints it. */
export const hex = (key: number) => `0x${(key >>> 0).toString(16).padStart(8, '0')}`;

/** Runs `ipckit ARGS` to its end: exit code and output. */
export function ipckit(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const child = spawn(process.execPath, [MAIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c));
  child.stderr.on('data', (c: Buffer) => (stderr += c));
  return new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs `ipckit ARGS`, which must exit 0 with nothing on stderr; its stdout. */
export async function ok(args: string[]): Promise<string> {
  const r = await ipckit(args);
  assert.equal(r.code, 0, `ipckit ${args.join(' ')} failed: ${r.stderr}`);
  assert.equal(r.stderr, '', `ipckit ${args.join(' ')} printed to stderr`);
  return r.stdout;
}
