// The shell examples of the CLI's docs are scripts that must run as they are
// written: the README's "Command line" block and every ```sh block of
// docs/*.md (unless marked `<!-- not run: REASON -->` on the line before, as
// for the docs test's js/ts blocks, which do not include shell). Each runs
// with `ipckit` on the PATH and its names made unique, must exit 0, and must
// leave no object and no file behind.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { MAIN } from './cli-run.js';
import { has, uniqueName } from '../helpers.js';

const dir = mkdtempSync(join(tmpdir(), 'ipckit-doc-scripts-'));
after(() => rmSync(dir, { recursive: true, force: true }));
writeFileSync(join(dir, 'ipckit'), `#!/bin/sh\nexec ${JSON.stringify(process.execPath)} ${JSON.stringify(MAIN)} "$@"\n`);
chmodSync(join(dir, 'ipckit'), 0o755);

interface ShellBlock {
  file: string;
  line: number;
  code: string;
  notRun: string | null;
}

const NOT_RUN = /^<!--\s*not run:\s*(.*?)\s*-->\s*$/;

/** The ```sh blocks of a Markdown text, with their 1-based line. */
function shellBlocks(file: string, markdown: string): ShellBlock[] {
  const lines = markdown.split('\n');
  const blocks: ShellBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```sh') continue;
    const end = lines.indexOf('```', i + 1);
    blocks.push({ file, line: i + 1, code: lines.slice(i + 1, end).join('\n'), notRun: NOT_RUN.exec(lines[i - 1] ?? '')?.[1] ?? null });
    i = end;
  }
  return blocks;
}

const read = (file: string) => readFileSync(new URL(`../../${file}`, import.meta.url), 'utf8');
const readme = read('README.md');
const commandLineAt = readme.split('\n').indexOf('## Command line');
const docs = readdirSync(new URL('../../docs/', import.meta.url)).filter((f) => f.endsWith('.md')).sort();
const blocks = [
  ...shellBlocks('README.md', readme).filter((b) => b.line > commandLineAt).slice(0, 1),
  ...docs.flatMap((f) => shellBlocks(`docs/${f}`, read(`docs/${f}`))),
];

test('the README has a "Command line" block and docs/cli.md has shell examples', () => {
  assert.ok(commandLineAt >= 0 && blocks[0]?.file === 'README.md', 'README.md has a ```sh block under "## Command line"');
  assert.ok(blocks.filter((b) => b.file === 'docs/cli.md' && !b.notRun).length >= 6);
});

/**
 * The script with its names made this run's own: POSIX object names (`/demo`),
 * channel names (`shm:demo`) and files in /tmp, so that a parallel run or an
 * object someone made by hand cannot collide with it.
 */
function withUniqueNames(script: string, work: string, tag: string): { script: string; names: string[] } {
  const posix = new Set([...script.matchAll(/\bipckit (?:shm|sem|mq) \w+ (\/[\w-]+)(?=\s|$)/g)].map((m) => m[1]!));
  const channels = new Set([...script.matchAll(/\bshm:([\w-]+)/g)].map((m) => m[1]!));
  const names: string[] = [];
  for (const name of posix) {
    const unique = uniqueName(`doc-${name.slice(1)}`);
    names.push(unique.slice(1));
    script = script.replace(new RegExp(`(?<=\\s)${name}(?=\\s|$)`, 'g'), unique);
  }
  for (const name of channels) {
    const unique = `${tag}-${name}`;
    names.push(unique);
    script = script.replace(new RegExp(`\\bshm:${name}\\b`, 'g'), `shm:${unique}`);
  }
  return { script: script.replaceAll('/tmp/', `${work}/`), names };
}

/** Objects in /dev/shm and /dev/mqueue whose name contains one of `names`. */
function leftBehind(names: string[]): string[] {
  const list = (d: string) => (existsSync(d) ? readdirSync(d).map((n) => `${d}/${n}`) : []);
  return [...list('/dev/shm'), ...list('/dev/mqueue')].filter((path) => names.some((n) => path.includes(n)));
}

/**
 * What some examples must print: the messages and signals that went from one
 * process to another. Keys: a file, or a file and the start of a block's
 * first line.
 */
const EXPECTED: Record<string, RegExp[]> = {
  'docs/mq.md': [/"priority":5,"size":6,"encoding":"utf8","data":"hello\\n"/],
  'docs/signals.md': [/^\{"ready":true,"pid":\d+\}$/m, /"signal":"SIGRTMIN\+1",.*"value":7,"code":"SI_QUEUE"/, /"signal":"SIGUSR1",.*"code":"SI_USER"/],
  'README.md': [/^hi$/m, /^job$/m, /^hello$/m, /^\{"signal":"SIGRTMIN\+1",.*"value":42,"code":"SI_QUEUE"\}$/m, /RLIMIT_MSGQUEUE/],
  'docs/cli.md ipckit shm create /frames': [/^hello\{$/m, /"kind": "sysv-shm"/],
  'docs/cli.md ipckit sem create /jobs': [/VALUE/],
  'docs/cli.md ipckit recv unix:/tmp/far.sock': [/^one\ntwo$/m],
  'docs/cli.md ipckit mq create /jobs': [/^\{"priority":5,"size":6,"encoding":"utf8","data":"job-1\\n"\}$/m, /^typed$/m],
  'docs/cli.md ipckit fifo create': [/^job 1$/m],
  'docs/cli.md ipckit signal list': [/^\{"ready":true,"pid":\d+\}$/m, /"signal":"SIGRTMIN\+1",.*"value":7,"code":"SI_QUEUE"/, /"signal":"SIGUSR1",.*"value":null,"code":"SI_USER"/],
  'docs/cli.md ipckit recv shm:demo': [/^hello\na\nb\n$/],
  'docs/cli.md head -c 100k': [/^hello, socatbytes\n$/],
};

for (const [i, block] of blocks.entries()) {
  const first = block.code.split('\n')[0]!;
  test(`${block.file}:${block.line}: ${first.replace(/\s+#.*/, '')}`, { timeout: 60_000 }, async (t) => {
    if (block.notRun) return t.skip(block.notRun);
    // Tens of seconds of every core, and checked step by step where it belongs.
    if (/\bipckit tour\b/.test(block.code)) return t.skip('the tour runs in test/cli/cli-tour.test.ts');
    if (/\bsocat\b/.test(block.code) && !has('socat')) return t.skip('socat not installed');
    const work = join(dir, `block-${i}`);
    mkdirSync(work);
    const { script, names } = withUniqueNames(block.code, work, `ipckit-test-doc-${process.pid}-${i}`);
    // set -e: a failing line fails the example; the final wait lets background jobs finish.
    writeFileSync(join(dir, `block-${i}.sh`), `set -e\n${script}\nwait\n`);
    const child = spawn('sh', [join(dir, `block-${i}.sh`)], { cwd: work, env: { ...process.env, PATH: `${dir}:${process.env.PATH}` }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    assert.equal(code, 0, `${block.file}:${block.line} failed; script:\n${script}\nstderr:\n${stderr}\nstdout:\n${stdout}`);
    const key = Object.keys(EXPECTED).find((k) => k === block.file || (k.startsWith(`${block.file} `) && first.startsWith(k.slice(block.file.length + 1))));
    for (const pattern of EXPECTED[key ?? ''] ?? []) assert.match(stdout, pattern, `${block.file}:${block.line} printed:\n${stdout}`);
    assert.deepEqual(leftBehind(names), []);
    assert.deepEqual(readdirSync(work), [], 'the files the example made (FIFOs, socket files) are gone');
  });
}
