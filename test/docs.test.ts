// Every ```js, ```mjs and ```ts example in README.md and docs/*.md runs as a
// real Node program (ESM; TypeScript is compiled first) that imports 'ipckit'
// and must exit 0 and leave nothing behind. The files are written inside this
// package (dist-test/docs-examples/), so 'ipckit' resolves to this checkout by
// the package's self-reference, and run from an empty temporary directory.
//
// Conventions the docs follow:
// - `<!-- not run: REASON -->` on the line before a block skips it;
// - a line `// --- in another process ---` splits a block: the part before runs
//   first, the part after is started once the first printed a line of stdout
//   (a listener prints when it is ready), and both must exit 0.
// Line numbers in an example's errors are lines of its Markdown file.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { ftok, mq, sem, shm } from 'ipckit';
import ts from 'typescript';
import { ipcObjects, type IpcObject } from '../scripts/ipc-objects.mjs';
import { extractBlocks, namedPaths, splitProcesses, usingDeclarations, type DocBlock } from './doc-blocks.js';
import { NatsServer, natsServerSkip } from './channel/nats-server.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const examplesDir = join(root, 'dist-test', 'docs-examples');
/** How long each process of an example may run. */
const PROCESS_TIMEOUT_MS = 20_000;
/** Prefixes of the test suite's and the benchmarks' own objects, which another run may create meanwhile. */
const FOREIGN_PREFIXES = ['/dev/shm/ipckit-test-', '/dev/shm/sem.ipckit-test-', '/dev/mqueue/ipckit-test-', '/dev/shm/ipckit-bench-', '/dev/shm/sem.ipckit-bench-', '/dev/mqueue/ipckit-bench-'];

const docFiles = [
  'README.md',
  ...readdirSync(join(root, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`),
];
const blocks = docFiles.flatMap((file) => extractBlocks(file, readFileSync(join(root, file), 'utf8')));
rmSync(examplesDir, { recursive: true, force: true });
mkdirSync(examplesDir, { recursive: true });
/** Examples of nats:// channels reach their server as process.env.NATS_URL: a nats-server of this test file. */
const NATS_EXAMPLE = /process\.env\.NATS_URL/;
const nats = natsServerSkip || !blocks.some((b) => NATS_EXAMPLE.test(b.code)) ? null : await NatsServer.start();

test('the docs have examples to run', () => {
  assert.ok(blocks.length > 10, `found only ${blocks.length} js/ts blocks in ${docFiles.join(', ')}`);
});

for (const block of blocks) {
  test(`${block.file}:${block.line} (${block.language})`, { timeout: 3 * PROCESS_TIMEOUT_MS }, async (t) => {
    if (block.notRun) {
      t.skip(block.notRun);
      return;
    }
    if (NATS_EXAMPLE.test(block.code) && natsServerSkip) {
      t.skip(natsServerSkip);
      return;
    }
    if (block.language !== 'ts') {
      const using = usingDeclarations(block.code);
      assert.deepEqual(
        using,
        [],
        `${block.file}:${block.line}: a \`\`\`${block.language} block uses \`using\`, which Node 20 cannot parse ` +
          '(call close() / unlink() in a finally, or make it a ```ts block, which is compiled first)',
      );
    }
    const files = writeExample(block);
    await runExample(block, files);
  });
}

/** Writes the example's processes as .mjs files; returns their paths. */
function writeExample(block: DocBlock): string[] {
  const dir = join(examplesDir, `${block.file.replace(/[/.]/g, '-')}-${block.line}`);
  mkdirSync(dir, { recursive: true });
  return splitProcesses(block).map((source, i) => {
    const file = join(dir, `process-${i + 1}.mjs`);
    writeFileSync(file, block.language === 'ts' ? compile(source, block) : source);
    return file;
  });
}

function compile(source: string, block: DocBlock): string {
  const out = ts.transpileModule(source, {
    // An inline source map (run with --enable-source-maps) keeps error lines those of the Markdown file.
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ESNext, inlineSourceMap: true, inlineSources: true, sourceRoot: dirname(join(root, block.file)) },
    fileName: join(root, block.file),
    reportDiagnostics: true,
  });
  const errors = (out.diagnostics ?? []).map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
  assert.deepEqual(errors, [], `${block.file}:${block.line}: TypeScript cannot compile the example`);
  return out.outputText;
}

interface Run {
  child: ChildProcess;
  file: string;
  output: string;
  /** Resolves true at the first line of stdout, false if the process exits without one. */
  firstLine: Promise<boolean>;
  exited: Promise<string | null>;
}

async function runExample(block: DocBlock, files: string[]): Promise<void> {
  const where = `${block.file}:${block.line}`;
  const cwd = mkdtempSync(join(tmpdir(), 'ipckit-docs-'));
  const paths = namedPaths(block.code).filter((p) => !existsSync(p));
  const before = new Set(ipcObjects().map((o) => o.name));
  const runs: Run[] = [];
  try {
    for (const [i, file] of files.entries()) {
      if (i > 0 && !(await runs[i - 1].firstLine)) {
        break; // reported below: the process exited without the line the next one waits for
      }
      runs.push(start(file, cwd));
    }
    const failures = (await Promise.all(runs.map((r) => r.exited))).flatMap((why, i) =>
      why ? [`process ${i + 1} of ${files.length} (${runs[i].file}) ${why}`] : [],
    );
    if (runs.length < files.length) {
      failures.push(`process ${runs.length} printed no line before exiting, so process ${runs.length + 1} was never started (a listener prints a line when it is ready)`);
    }
    const left = await leftovers(block, runs.map((r) => r.child.pid ?? 0), before, paths, cwd);
    if (left.length) failures.push(`left behind: ${left.join(', ')}`);
    if (failures.length) {
      const output = runs.map((r, i) => `--- output of process ${i + 1} ---\n${r.output.trimEnd()}`).join('\n');
      assert.fail(`${where}: ${failures.join('; ')}\n${output}`);
    }
  } finally {
    for (const r of runs) killGroup(r.child);
    rmSync(cwd, { recursive: true, force: true });
  }
}

function start(file: string, cwd: string): Run {
  const env = { ...process.env };
  delete env.NODE_TEST_CONTEXT; // the example is a program, not a child of this test runner
  if (nats) env.NATS_URL = `nats://127.0.0.1:${nats.port}`;
  // Its own process group: a timeout ends whatever the example started too.
  const child = spawn(process.execPath, ['--enable-source-maps', file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const run: Run = { child, file, output: '', firstLine: Promise.resolve(false), exited: Promise.resolve(null) };
  let sawLine: (ok: boolean) => void = () => {};
  run.firstLine = new Promise((resolve) => (sawLine = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    run.output += chunk.toString();
    if (chunk.includes(0x0a)) sawLine(true);
  });
  child.stderr?.on('data', (chunk: Buffer) => (run.output += chunk.toString()));
  run.exited = new Promise((resolve) => {
    const timer = setTimeout(() => {
      killGroup(child);
      resolve(`did not exit within ${PROCESS_TIMEOUT_MS / 1000} s`);
    }, PROCESS_TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      sawLine(false);
      resolve(`could not start: ${e.message}`);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      sawLine(false);
      const stray = groupAlive(child);
      killGroup(child);
      if (code !== 0) resolve(`exited with ${signal ?? `status ${code}`}`);
      else if (stray) resolve('exited but left processes running');
      else resolve(null);
    });
  });
  return run;
}

function groupAlive(child: ChildProcess): boolean {
  try {
    process.kill(-(child.pid ?? 0), 0);
    return true;
  } catch {
    return false;
  }
}

function killGroup(child: ChildProcess): void {
  if (!child.pid) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/**
 * What the example left: files it named, anything in its working directory,
 * and IPC objects that appeared while it ran and are not another program's.
 * Other programs (test suites, the tour) may make objects meanwhile on this
 * machine, so an object counts as the example's when the example spells out
 * its name or key (a literal, or an ftok() of a literal path), when the kernel
 * recorded one of the example's pids for it (creator, last sender, last semop)
 * or a generated name carries one. An object with no such evidence either way
 * (an unused private System V object, a POSIX name without a pid in it) counts
 * if it is still there after a short while: another program's would be in use,
 * or gone. The example's own objects and files are removed once reported, so
 * one broken example does not fail the next.
 */
async function leftovers(block: DocBlock, pids: number[], before: Set<string>, paths: string[], cwd: string): Promise<string[]> {
  const keys = namedKeys(block.code);
  const left: string[] = [];
  let unclear: IpcObject[] = [];
  for (const o of ipcObjects()) {
    if (before.has(o.name) || FOREIGN_PREFIXES.some((p) => o.name.startsWith(p))) continue;
    const recorded = o.kind === 'sysv-sem' ? semPids(o.id!) : o.pids;
    const posix = /^\/dev\/(?:shm\/(?:sem\.)?|mqueue\/)(.+)$/.exec(o.name);
    const key = posix ? 0 : Number(/ key=(0x[0-9a-f]+) /.exec(o.name)?.[1]);
    const ours =
      recorded.some((pid) => pids.includes(pid)) ||
      pids.some((pid) => new RegExp(`\\b${pid}\\b`).test(o.name)) ||
      (posix ? ["'", '"', '`'].some((q) => block.code.includes(`${q}/${posix[1]}${q}`)) : keys.includes(key));
    if (ours) {
      removeObject(o);
      left.push(o.name);
    } else if (recorded.length === 0 && (posix ? !/\d{3,}/.test(posix[1]) : key === 0)) {
      unclear.push(o);
    }
  }
  for (let waited = 0; unclear.length && waited < 2000; waited += 100) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    const now = new Set(ipcObjects().map((o) => o.name));
    unclear = unclear.filter((o) => now.has(o.name));
  }
  left.push(...unclear.map((o) => `${o.name} (probably)`));
  const files = paths.filter((p) => existsSync(p));
  for (const p of files) rmSync(p, { recursive: true, force: true });
  const inCwd = readdirSync(cwd).map((name) => `${name} (in the working directory)`);
  return [...left, ...files, ...inCwd];
}

/** System V keys an example spells out: hex literals, and ftok() of a literal path. */
function namedKeys(code: string): number[] {
  const keys = [...code.matchAll(/\b0x[0-9a-f]{1,8}\b/gi)].map((m) => Number(m[0]));
  for (const m of code.matchAll(/ftok\(\s*['"]([^'"]+)['"]\s*,\s*(\d+)\s*\)/g)) {
    try {
      keys.push(ftok(m[1], Number(m[2])) >>> 0);
    } catch {
      // no such file: the example cannot have made the key either
    }
  }
  return keys.filter((k) => k !== 0);
}

/** The pids of the last semop on each semaphore of a System V set (0: never). */
function semPids(id: number): number[] {
  try {
    const set = sem.sysv.fromId(id);
    return Array.from({ length: set.count }, (_, i) => set.pidOf(i)).filter((pid) => pid > 0);
  } catch {
    return [];
  }
}

function removeObject(o: IpcObject): void {
  try {
    if (o.kind === 'posix') rmSync(o.name, { force: true });
    else if (o.kind === 'sysv-shm') shm.sysv.fromId(o.id!).remove();
    else if (o.kind === 'sysv-sem') sem.sysv.fromId(o.id!).remove();
    else mq.sysv.fromId(o.id!).remove();
  } catch {
    // gone meanwhile
  }
}
