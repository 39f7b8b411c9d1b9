// Packages the `--compare` cases measure (zeromq, node-ipc) are not
// dependencies of ipckit: they are found where Node would find them from
// here (this checkout's devDependencies, or the user's own node_modules
// beside an installed ipckit), loaded with import() only inside the
// benchmark processes, and a case whose package is absent or fails to load
// is skipped with the reason, never an error.
import { spawnSync } from 'node:child_process';

/**
 * Where a package is looked up, overridable per package for a run:
 * IPCKIT_BENCH_PACKAGES="zeromq=/opt/zmq-build/lib/index.js,node-ipc=node-ipc"
 * loads another install (absolute path or package name) in its place. The
 * tests use it to name a package that does not exist, or a file that throws.
 * Peers inherit the harness's environment, so both sides load the same one.
 */
export const PACKAGES_ENV = 'IPCKIT_BENCH_PACKAGES';

function specifier(name: string): string {
  for (const pair of (process.env[PACKAGES_ENV] ?? '').split(',')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) return pair.slice(eq + 1).trim();
  }
  return name;
}

/** The URL import() would load for `name`, or undefined when Node finds nothing. */
function resolve(name: string): string | undefined {
  const spec = specifier(name);
  try {
    return spec.startsWith('/') ? new URL(`file://${spec}`).href : import.meta.resolve(spec);
  } catch {
    return undefined;
  }
}

/** The end of the reason given for a package Node does not find. */
export const NOT_INSTALLED = 'is not installed';

const verdicts = new Map<string, string | undefined>();

/**
 * Why `name` cannot be used here: 'not installed', or 'fails to load: ...'
 * with the first line of the error; undefined when it loads. The load is
 * tried in a short-lived child process (a native addon such as zeromq's
 * starts threads that the harness has no use for), once per process.
 */
export function packageUnavailable(name: string): string | undefined {
  if (!verdicts.has(name)) verdicts.set(name, probe(name));
  return verdicts.get(name);
}

function probe(name: string): string | undefined {
  const url = resolve(name);
  if (!url) return `${name} ${NOT_INSTALLED}`;
  const child = spawnSync(process.execPath, ['--input-type=module', '-e', 'await import(process.argv[1]);', url], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  if (child.status === 0) return undefined;
  const why = /^\w*Error[^\n]*/m.exec(child.stderr)?.[0] ?? (child.error?.message || `exit ${child.signal ?? child.status}`);
  return `${name} fails to load: ${why}`;
}

/** Loads `name` (inside a benchmark peer); a CommonJS package comes back as its module.exports. */
export async function loadPackage<T>(name: string): Promise<T> {
  const url = resolve(name);
  if (!url) throw new Error(`${name} ${NOT_INSTALLED}`);
  const ns = (await import(url)) as { default?: T };
  return (ns.default ?? ns) as T;
}
