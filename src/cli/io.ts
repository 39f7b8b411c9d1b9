// Binary-safe standard input and output for the commands that move bytes.
import { UsageError } from './args.js';

/** All of stdin as one Buffer. Refuses a terminal, where it would wait for typing. */
export async function readStdin(what: string): Promise<Buffer> {
  if (process.stdin.isTTY) {
    throw new UsageError(`no data: pass ${what} or pipe the bytes into stdin`);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Writes bytes to stdout and resolves once they are handed to the OS. */
export function writeStdout(data: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) => {
    process.stdout.write(data, (err) => (err ? reject(err) : resolve()));
  });
}
