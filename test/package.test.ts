// The package contract: another folder that depends on this checkout can
// import 'ipckit' from plain node, and the `ipckit` bin runs through its link.
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { run } from './helpers.js';

const checkout = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const app = mkdtempSync(join(tmpdir(), 'ipckit-consumer-'));
after(() => rmSync(app, { recursive: true, force: true }));
mkdirSync(join(app, 'node_modules', '.bin'), { recursive: true });
symlinkSync(checkout, join(app, 'node_modules', 'ipckit'));
const pkg = JSON.parse(readFileSync(join(checkout, 'package.json'), 'utf8'));
symlinkSync(join('..', 'ipckit', pkg.bin.ipckit), join(app, 'node_modules', '.bin', 'ipckit'));

test('a plain node script in another folder imports ipckit (ESM and types)', { timeout: 30_000 }, () => {
  writeFileSync(
    join(app, 'app.mjs'),
    `import { shm, mmap, IpcError, ftok } from 'ipckit';
     const r = shm.anonymous(4096);
     Atomics.add(new Int32Array(r.buffer), 0, 5);
     r.close();
     console.log(typeof mmap.file, typeof IpcError, typeof ftok, 'ok');`,
  );
  assert.equal(run(process.execPath, [join(app, 'app.mjs')]).trim(), 'function function function ok');
  assert.ok(pkg.types && pkg.exports['.'].types, 'ships type declarations');
});

test("the benchmark harness is importable as 'ipckit/bench'", { timeout: 30_000 }, () => {
  writeFileSync(join(app, 'bench.mjs'), `import { runBench } from 'ipckit/bench'; console.log(typeof runBench);`);
  assert.equal(run(process.execPath, [join(app, 'bench.mjs')]).trim(), 'function');
  assert.ok(pkg.exports['./bench'].types, 'ships its type declarations');
});

test('the ipckit bin runs through its link', { timeout: 30_000 }, () => {
  const out = run(join(app, 'node_modules', '.bin', 'ipckit'), ['--version']);
  assert.equal(out.trim(), pkg.version);
});
