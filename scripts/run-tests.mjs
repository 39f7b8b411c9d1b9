// Runs the compiled test suite with node:test and fails the run if it left
// IPC objects behind (POSIX shm/semaphores in /dev/shm, POSIX queues in
// /dev/mqueue, System V objects in /proc/sysvipc).
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ipcObjects } from './ipc-objects.mjs';

const root = new URL('..', import.meta.url).pathname;
const testDir = join(root, 'dist-test');

// POSIX message queues are only listed where the mqueue filesystem is mounted.
if (process.getuid?.() === 0 && !existsSync('/dev/mqueue/.') && existsSync('/dev')) {
  spawnSync('sh', ['-c', 'mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue'], { stdio: 'ignore' });
}

function snapshot() {
  return new Set(ipcObjects().map((o) => o.name));
}

// npm test: every *.test.js except under fixtures/ and stress/. npm run stress
// (--stress): the heavy runs, stress/*.stress.js.
function findTests(dir, suffix, skip) {
  const out = [];
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory() && !skip.includes(entry.name)) out.push(...findTests(p, suffix, skip));
    else if (entry.isFile() && entry.name.endsWith(suffix)) out.push(p);
  }
  return out.sort();
}

const stress = process.argv[2] === '--stress';
const only = process.argv.slice(stress ? 3 : 2);
const files = only.length ? only : stress ? findTests(join(testDir, 'stress'), '.stress.js', []) : findTests(testDir, '.test.js', ['fixtures', 'stress']);
// The command-line tests spend their time starting `ipckit` processes (each
// one is CPU-bound module loading, about 0.3 s), time nothing and look only at
// their own objects: they run two files at a time, which keeps both cores
// busy. Every other file runs alone, so that its peers' wake-ups and the
// timing bounds it checks (an abort rejects at once, a lost peer is seen
// within 2 s) never compete with another file's processes, and the docs
// test, which checks that an example left no IPC object anywhere on the
// machine, sees only its own.
const TWO_AT_A_TIME = /(^|\/)cli[^/]*\.test\.js$|\/cli\/[^/]+\.test\.js$/;
const groups = stress || only.length
  ? [{ files, concurrency: 1 }]
  : [
      { files: files.filter((f) => TWO_AT_A_TIME.test(f)), concurrency: 2 },
      { files: files.filter((f) => !TWO_AT_A_TIME.test(f)), concurrency: 1 },
    ];
const before = snapshot();
let status = 0;
for (const group of groups) {
  if (group.files.length === 0) continue;
  const run = spawnSync(
    process.execPath,
    // Stress tests set their own (long) timeouts.
    ['--test', '--test-reporter=spec', `--test-concurrency=${group.concurrency}`, `--test-timeout=${stress ? 4 * 3_600_000 : 180_000}`, ...group.files],
    { stdio: 'inherit', cwd: root },
  );
  if (run.status !== 0) status = run.status || 1;
}
const leaked = [...snapshot()].filter((x) => !before.has(x));
if (leaked.length) {
  console.error(`\nleak check: the test run left ${leaked.length} IPC object(s) behind:`);
  for (const x of leaked) console.error(`  ${x}`);
} else {
  console.log('leak check: no IPC objects left behind (/dev/shm, /dev/mqueue, System V)');
}
process.exit(status === 0 && leaked.length === 0 ? 0 : status || 1);
