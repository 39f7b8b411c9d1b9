// The README's "Command line" block is a shell script that must run as it is
// written: every line, background jobs included, exits 0 and leaves no object
// behind. Shell blocks are not run by the docs test (it runs js/ts only), so
// this test runs that one with `ipckit` on the PATH, its names made unique.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MAIN } from './cli-run.js';
import { has, uniqueName } from './helpers.js';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const dir = mkdtempSync(join(tmpdir(), 'ipckit-readme-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The first ```sh block after the heading `## Command line`. */
function commandLineBlock(): string {
  const section = README.split(/^## Command line$/m)[1];
  assert.ok(section, 'README.md has a "## Command line" section');
  const block = /^```sh\n([\s\S]*?)^```$/m.exec(section);
  assert.ok(block, 'the "Command line" section has a ```sh block');
  return block[1]!;
}

/**
 * The block with its names made this run's own: POSIX object names (`/demo`),
 * channel names (`shm:demo`) and files in /tmp, so that a parallel run or an
 * object someone made by hand cannot collide with it.
 */
function withUniqueNames(script: string, tag: string): { script: string; names: string[] } {
  const posix = new Set([...script.matchAll(/\bipckit (?:shm|sem|mq) \w+ (\/[\w-]+)(?=\s)/g)].map((m) => m[1]!));
  const channels = new Set([...script.matchAll(/\bshm:([\w-]+)/g)].map((m) => m[1]!));
  const names: string[] = [];
  for (const name of posix) {
    const unique = uniqueName(`readme-${name.slice(1)}`);
    names.push(unique.slice(1));
    script = script.replace(new RegExp(`(?<=\\s)${name}(?=\\s)`, 'g'), unique);
  }
  for (const name of channels) {
    const unique = `${tag}-${name}`;
    names.push(unique);
    script = script.replace(new RegExp(`\\bshm:${name}\\b`, 'g'), `shm:${unique}`);
  }
  return { script: script.replaceAll('/tmp/', `${dir}/`), names };
}

/** Objects in /dev/shm and /dev/mqueue whose name contains one of `names`. */
function leftBehind(names: string[]): string[] {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).map((n) => `${d}/${n}`) : []);
  return [...list('/dev/shm'), ...list('/dev/mqueue')].filter((path) => names.some((n) => path.includes(n)));
}

test('README: the "Command line" block runs as a shell script, exits 0 and leaves nothing behind', { timeout: 120_000, skip: !has('socat') && 'socat not installed (the block has socat as a peer)' }, async () => {
  writeFileSync(join(dir, 'ipckit'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} "$@"\n`);
  chmodSync(join(dir, 'ipckit'), 0o755);
  const tag = `ipckit-test-readme-${process.pid}`;
  const { script, names } = withUniqueNames(commandLineBlock(), tag);
  assert.ok(names.length >= 4, `expected the block's objects to be named: ${names.join(', ')}`);
  writeFileSync(join(dir, 'readme.sh'), `set -e\n${script}`);

  const child = spawn('sh', [join(dir, 'readme.sh')], { cwd: dir, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
  child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
  assert.equal(code, 0, `the README's commands failed; script:\n${script}\nstderr:\n${stderr}\nstdout:\n${stdout}`);

  // What each pair of processes passed to the other reached it.
  const lines = stdout.split('\n');
  for (const expected of ['hi', 'job', 'hello']) assert.ok(lines.includes(expected), `stdout has a line "${expected}":\n${stdout}`);
  // The signal was sent to the pid of the ready line (read by the script) and came with its value.
  assert.match(stdout, /^\{"signal":"SIGRTMIN\+1",.*"value":42,"code":"SI_QUEUE"\}$/m);
  assert.match(stdout, /RLIMIT_MSGQUEUE/);
  assert.deepEqual(leftBehind(names), []);
  assert.deepEqual(readdirSync(dir).sort(), ['ipckit', 'readme.sh'], 'the FIFO and the socket file are gone');
});
