// No export that nothing imports: knip (configured in knip.jsonc) follows the
// imports from the package's entry points, the processes it starts, the tests
// and the scripts, and lists every export, file or dependency left unused. An
// export only its own module uses is module-private instead.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const checkout = join(dirname(fileURLToPath(import.meta.url)), '..');
const KNIP = join(checkout, 'node_modules', '.bin', 'knip');

test('knip finds no unused export, file or dependency', { timeout: 120_000 }, async (t) => {
  if (!existsSync(KNIP)) return t.skip('knip is not installed (npm install)');
  // A stale knip.jsonc entry (an ignore nothing needs any more) fails too.
  const found = await promisify(execFile)(KNIP, ['--no-progress', '--treat-config-hints-as-errors'], { cwd: checkout, timeout: 100_000 }).then(
    () => null,
    (e: { code?: number; signal?: string; stdout?: string; stderr?: string }) => `knip (exit ${e.code ?? e.signal}) found:\n${e.stdout ?? ''}${e.stderr ?? ''}`,
  );
  if (found) assert.fail(found);
});
