// The addon's exports and the Native interface TypeScript sees (src/core/native.ts)
// name the same functions and constants: an export nobody declared is dead C,
// a declaration nobody exports is a TypeError waiting at its first call.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const checkout = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Member names of `export interface Native { … }`, read from the source. */
export function declaredNames(source: string): string[] {
  const start = source.indexOf('export interface Native {');
  assert.ok(start >= 0, 'src/core/native.ts declares `export interface Native {`');
  const body = source.slice(start, source.indexOf('\n}\n', start));
  return [...body.matchAll(/^ {2}(\w+)\??[(:]/gm)].map((m) => m[1]!);
}

test('the addon exports exactly the names the Native interface declares', () => {
  const declared = declaredNames(readFileSync(join(checkout, 'src', 'core', 'native.ts'), 'utf8'));
  const addon = createRequire(import.meta.url)(join(checkout, 'build', 'Release', 'ipckit.node')) as object;
  const exported = Object.keys(addon);
  const missing = declared.filter((n) => !exported.includes(n)).sort();
  const undeclared = exported.filter((n) => !declared.includes(n)).sort();
  assert.deepEqual({ missing, undeclared }, { missing: [], undeclared: [] }, 'declared but not exported / exported but not declared');
  assert.ok(declared.length > 100, `found ${declared.length} declared names`);
});
