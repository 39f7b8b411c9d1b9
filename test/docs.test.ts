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
import { mq, sem, shm } from 'ipckit';
import ts from 'typescript';
import { ipcObjects, type IpcObject } from '../scripts/ipc-objects.mjs';
import { extractBlocks, namedPaths, splitProcesses, usingDeclarations, type DocBlock } from './doc-blocks.js';

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

test('the docs have examples to run', () => {
  assert.ok(blocks.length > 10, `found only ${blocks.length} js/ts blocks in ${docFiles.join(', ')}`);
});

for (const block of blocks) {
  test(`${block.file}:${block.line} (${block.language})`, { timeout: 3 * PROCESS_TIMEOUT_MS }, async (t) => {
    if (block.notRun) {
      t.skip(block.notRun);
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
  /** Resolves at the first line of stdout, or when the process exits without one (false). */
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
    const left = leftovers(block, before, paths, cwd);
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
  // Its own process group: a timeout ends whatever the example started too.
  const child = spawn(process.execPath, ['--enable-source-maps', file], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
  const run: Run = { child, file, output: '', firstLine: Promise.resolve(false), exited: Promise.resolve(null) };
  let sawLine: (ok: boolean) => void = () => {};
  run.firstLine = new Promise((resolve) => (sawLine = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    run.output += chunk.toString();
    if (run.output.includes('\n')) sawLine(true);
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
      sawLine(run.output.length > 0);
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

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * What the example left: IPC objects that appeared while it ran (not the test
 * suite's, nor held by a live process: every process of the example has
 * exited), files it named, and anything in its working directory. Files, and
 * objects whose name or key the example spells out, are removed once reported,
 * so one broken example does not fail the next; other objects might belong to
 * another program that made them meanwhile, and are only reported.
 */
function leftovers(block: DocBlock, before: Set<string>, paths: string[], cwd: string): string[] {
  const objects = ipcObjects().filter(
    (o) => !before.has(o.name) && !FOREIGN_PREFIXES.some((p) => o.name.startsWith(p)) && !o.pids.some(alive),
  );
  for (const o of objects) if (namedIn(block.code, o)) removeObject(o);
  const files = paths.filter((p) => existsSync(p));
  for (const p of files) rmSync(p, { recursive: true, force: true });
  const inCwd = readdirSync(cwd).map((name) => `${name} (in the working directory)`);
  return [...objects.map((o) => o.name), ...files, ...inCwd];
}

function namedIn(code: string, o: IpcObject): boolean {
  const posix = /^\/dev\/(?:shm\/(?:sem\.)?|mqueue\/)(.+)$/.exec(o.name);
  if (posix) return ["'", '"', '`'].some((q) => code.includes(`${q}/${posix[1]}${q}`));
  const key = / key=(0x[0-9a-f]+) /.exec(o.name);
  return key !== null && key[1] !== '0x0' && code.toLowerCase().includes(key[1]);
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
