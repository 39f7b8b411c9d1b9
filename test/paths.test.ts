// Every repository path a comment or a document names exists: a file that
// moved or went away takes the sentences that point at it along, instead of
// leaving readers a dead end. Placeholders (NAME, <area>, *) are not paths.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const checkout = join(dirname(fileURLToPath(import.meta.url)), '..');
const SCANNED_DIRS = ['src', 'native', 'test', 'docs', 'scripts', '.ci'];
const SKIPPED_DIRS = new Set(['node_modules', 'dist', 'dist-test', 'build', '.git']);
const SCANNED_FILE = /\.(ts|c|cc|h|md|mjs|js|json|gyp)$|^run$/;
/** A path into one of the source folders, not preceded by a word, a dot or a slash (so not part of a longer path). */
const PATH = /(?<![\w./-])((?:src|native|test|docs|scripts|\.ci)\/[\w./-]*\w)/g;

function filesUnder(dir: string, out: string[]): string[] {
  for (const e of readdirSync(join(checkout, dir), { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIPPED_DIRS.has(e.name)) filesUnder(p, out);
    } else if (SCANNED_FILE.test(e.name)) out.push(p);
  }
  return out;
}

/** The paths named in `text` that do not exist in the checkout. */
export function deadPaths(text: string, exists: (path: string) => boolean): string[] {
  const dead: string[] = [];
  for (const m of text.matchAll(PATH)) {
    const path = m[1]!;
    const after = text[m.index! + m[0].length] ?? '';
    // A placeholder: `docs/<area>.md`, `src/cli/tour/NAME.ts`, `test/*.test.ts`, `src/{core,shm}/`.
    if ('<*{…'.includes(after) || /(^|\/)[A-Z][A-Z_]+(\.|\/|$)/.test(path)) continue;
    if (!exists(path)) dead.push(path);
  }
  return dead;
}

test('every repository path named in the source, tests, scripts and docs exists', () => {
  const files = [...SCANNED_DIRS.filter((d) => existsSync(join(checkout, d))).flatMap((d) => filesUnder(d, [])), 'README.md', 'package.json', 'binding.gyp'];
  const dead = files.flatMap((f) => deadPaths(readFileSync(join(checkout, f), 'utf8'), (p) => existsSync(join(checkout, p))).map((p) => `${f}: ${p}`));
  assert.deepEqual(dead, []);
  assert.ok(files.length > 100, `scanned ${files.length} files`);
});

test('the check itself: a planted dead path is found, placeholders are not paths', () => {
  const exists = (p: string) => p === 'src/index.ts';
  // Put together here, so this file itself names no dead path.
  const gone = ['src', 'gone.ts'].join('/');
  assert.deepEqual(deadPaths(`see src/index.ts and ${gone}, docs/<area>.md, src/cli/tour/NAME.ts, test/*.test.ts`, exists), [gone]);
});
